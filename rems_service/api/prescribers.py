"""Prescribers: registration and certification."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.common import EmptySchema, ReasonSchema
from rems_service.schemas.prescribers import PrescriberCertifySchema, PrescriberCreateSchema, PrescriberSchema
from rems_service.services import prescribers
from workflows.actors import UserRole

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
def register(args: dict[str, Any]) -> Any:
    """Register a prescriber (status ``pending``). Duplicate NPI → 409."""
    c = ctx()
    return prescribers.register(c.uow(), c.actor, c.now, **args)


@blp.route("/<uuid:prescriber_id>", methods=["GET"])
@roles(ADMIN, PRESCRIBER)
@blp.response(200, PrescriberSchema)
def get(prescriber_id: UUID) -> Any:
    """A prescriber; a prescriber user sees only itself."""
    c = ctx()
    return prescribers.get(c.uow(), c.actor, prescriber_id)


@blp.route("/<uuid:prescriber_id>/certify", methods=["POST"])
@roles(ADMIN, PRESCRIBER)
@blp.arguments(PrescriberCertifySchema)
@blp.response(200, PrescriberSchema)
def certify(args: dict[str, Any], prescriber_id: UUID) -> Any:
    """Certify with all four attestations true (admin, or the prescriber itself)."""
    c = ctx()
    return prescribers.certify(c.uow(), c.actor, c.now, prescriber_id, args["attestations"])


@blp.route("/<uuid:prescriber_id>/suspend", methods=["POST"])
@roles(ADMIN)
@blp.arguments(ReasonSchema)
@blp.response(200, PrescriberSchema)
def suspend(args: dict[str, Any], prescriber_id: UUID) -> Any:
    """Suspend a certified prescriber."""
    c = ctx()
    return prescribers.suspend(c.uow(), c.actor, c.now, prescriber_id, args["reason"])


@blp.route("/<uuid:prescriber_id>/reinstate", methods=["POST"])
@roles(ADMIN)
@blp.arguments(EmptySchema)
@blp.response(200, PrescriberSchema)
def reinstate(_args: dict[str, Any], prescriber_id: UUID) -> Any:
    """Reinstate a suspended prescriber."""
    c = ctx()
    return prescribers.reinstate(c.uow(), c.actor, c.now, prescriber_id)


@blp.route("/<uuid:prescriber_id>/decertify", methods=["POST"])
@roles(ADMIN)
@blp.arguments(ReasonSchema)
@blp.response(200, PrescriberSchema)
def decertify(args: dict[str, Any], prescriber_id: UUID) -> Any:
    """Decertify (final)."""
    c = ctx()
    return prescribers.decertify(c.uow(), c.actor, c.now, prescriber_id, args["reason"])
