"""Prescribers (R-PRES-1)."""

from __future__ import annotations

from uuid import UUID

from flask_smorest import Blueprint

from rems_service.auth import current_actor, protect, roles
from rems_service.clock import request_now
from rems_service.db.models import UserRole
from rems_service.runtime import get_runtime
from rems_service.schemas.common import EmptySchema, ReasonSchema
from rems_service.schemas.prescribers import PrescriberCertifySchema, PrescriberCreateSchema, PrescriberSchema
from rems_service.services import prescribers

blp = protect(
    Blueprint(
        "prescribers",
        __name__,
        url_prefix="/api/v1/prescribers",
        description="Prescriber registration and certification",
    )
)

ADMIN, PRESCRIBER = UserRole.ADMIN, UserRole.PRESCRIBER


@blp.route("", methods=["POST"])
@roles(ADMIN)
@blp.arguments(PrescriberCreateSchema)
@blp.response(201, PrescriberSchema)
def register(args):
    """Register a prescriber (status ``pending``). Duplicate NPI → 409."""
    return prescribers.register(get_runtime().uow(), current_actor(), request_now(), **args)


@blp.route("/<uuid:prescriber_id>", methods=["GET"])
@roles(ADMIN, PRESCRIBER)
@blp.response(200, PrescriberSchema)
def get(prescriber_id: UUID):
    """A prescriber; a prescriber user sees only itself."""
    return prescribers.get(get_runtime().uow(), current_actor(), prescriber_id)


@blp.route("/<uuid:prescriber_id>/certify", methods=["POST"])
@roles(ADMIN, PRESCRIBER)
@blp.arguments(PrescriberCertifySchema)
@blp.response(200, PrescriberSchema)
def certify(args, prescriber_id: UUID):
    """Certify with all four attestations true (admin, or the prescriber itself)."""
    return prescribers.certify(get_runtime().uow(), current_actor(), request_now(), prescriber_id, args["attestations"])


@blp.route("/<uuid:prescriber_id>/suspend", methods=["POST"])
@roles(ADMIN)
@blp.arguments(ReasonSchema)
@blp.response(200, PrescriberSchema)
def suspend(args, prescriber_id: UUID):
    """Suspend a certified prescriber."""
    return prescribers.suspend(get_runtime().uow(), current_actor(), request_now(), prescriber_id, args["reason"])


@blp.route("/<uuid:prescriber_id>/reinstate", methods=["POST"])
@roles(ADMIN)
@blp.arguments(EmptySchema)
@blp.response(200, PrescriberSchema)
def reinstate(_args, prescriber_id: UUID):
    """Reinstate a suspended prescriber."""
    return prescribers.reinstate(get_runtime().uow(), current_actor(), request_now(), prescriber_id)


@blp.route("/<uuid:prescriber_id>/decertify", methods=["POST"])
@roles(ADMIN)
@blp.arguments(ReasonSchema)
@blp.response(200, PrescriberSchema)
def decertify(args, prescriber_id: UUID):
    """Decertify (final)."""
    return prescribers.decertify(get_runtime().uow(), current_actor(), request_now(), prescriber_id, args["reason"])
