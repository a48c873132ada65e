"""Pharmacies (R-PHA-1, R-PHA-2)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint

from rems_service.auth import current_actor, protect, roles
from rems_service.clock import request_now
from rems_service.db.models import Pharmacy, UserRole
from rems_service.runtime import get_runtime
from rems_service.schemas.common import EmptySchema, OptionalReasonSchema
from rems_service.schemas.pharmacies import PharmacyCertifySchema, PharmacyCreateSchema, PharmacySchema
from rems_service.services import pharmacies

blp = protect(
    Blueprint(
        "pharmacies", __name__, url_prefix="/api/v1/pharmacies", description="Pharmacy registration and certification"
    )
)

ADMIN, PHARMACIST = UserRole.ADMIN, UserRole.PHARMACIST


def _out(row: Pharmacy) -> dict[str, Any]:
    """The pharmacy with its status as it stands at the request's time."""
    return {
        "id": row.id,
        "ncpdp_id": row.ncpdp_id,
        "name": row.name,
        "authorized_representative": {"name": row.representative_name, "email": row.representative_email},
        "status": pharmacies.effective_status(row, request_now()),
        "certified_at": row.certified_at,
        "certified_until": row.certified_until,
        "status_changed_at": row.status_changed_at,
        "status_reason": row.status_reason,
        "created_at": row.created_at,
    }


@blp.route("", methods=["POST"])
@roles(ADMIN)
@blp.arguments(PharmacyCreateSchema)
@blp.response(201, PharmacySchema)
def register(args):
    """Register a pharmacy (status ``pending``). Duplicate NCPDP ID → 409."""
    rep = args["authorized_representative"]
    return _out(
        pharmacies.register(
            get_runtime().uow(),
            current_actor(),
            request_now(),
            ncpdp_id=args["ncpdp_id"],
            name=args["name"],
            representative_name=rep["name"],
            representative_email=rep["email"],
        )
    )


@blp.route("/<uuid:pharmacy_id>", methods=["GET"])
@roles(ADMIN, PHARMACIST)
@blp.response(200, PharmacySchema)
def get(pharmacy_id: UUID):
    """A pharmacy; a pharmacist sees only its own."""
    return _out(pharmacies.get(get_runtime().uow(), current_actor(), pharmacy_id))


@blp.route("/<uuid:pharmacy_id>/certify", methods=["POST"])
@roles(ADMIN)
@blp.arguments(PharmacyCertifySchema)
@blp.response(200, PharmacySchema)
def certify(args, pharmacy_id: UUID):
    """Certify, or renew, for the program's certification period (R-PHA-2)."""
    runtime = get_runtime()
    return _out(
        pharmacies.certify(
            runtime.uow(), current_actor(), request_now(), runtime.program, pharmacy_id, args["attestations"]
        )
    )


@blp.route("/<uuid:pharmacy_id>/suspend", methods=["POST"])
@roles(ADMIN)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PharmacySchema)
def suspend(args, pharmacy_id: UUID):
    return _out(
        pharmacies.suspend(get_runtime().uow(), current_actor(), request_now(), pharmacy_id, args.get("reason"))
    )


@blp.route("/<uuid:pharmacy_id>/reinstate", methods=["POST"])
@roles(ADMIN)
@blp.arguments(EmptySchema)
@blp.response(200, PharmacySchema)
def reinstate(_args, pharmacy_id: UUID):
    return _out(pharmacies.reinstate(get_runtime().uow(), current_actor(), request_now(), pharmacy_id))


@blp.route("/<uuid:pharmacy_id>/decertify", methods=["POST"])
@roles(ADMIN)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PharmacySchema)
def decertify(args, pharmacy_id: UUID):
    return _out(
        pharmacies.decertify(get_runtime().uow(), current_actor(), request_now(), pharmacy_id, args.get("reason"))
    )
