"""Pharmacies: registration and certification."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from flask_smorest import Blueprint

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.db.models import Pharmacy
from rems_service.schemas.common import EmptySchema, OptionalReasonSchema
from rems_service.schemas.pharmacies import PharmacyCertifySchema, PharmacyCreateSchema, PharmacySchema
from rems_service.services import pharmacies
from workflows.actors import UserRole

blp = protect(
    Blueprint(
        "pharmacies", __name__, url_prefix="/api/v1/pharmacies", description="Pharmacy registration and certification"
    )
)

ADMIN, PHARMACIST = UserRole.ADMIN, UserRole.PHARMACIST


def _out(row: Pharmacy, now: datetime) -> dict[str, Any]:
    """The pharmacy with its status as it stands at the request's time."""
    return {
        "id": row.id,
        "ncpdp_id": row.ncpdp_id,
        "name": row.name,
        "authorized_representative": {"name": row.representative_name, "email": row.representative_email},
        "status": pharmacies.effective_status(row, now),
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
def register(args: dict[str, Any]) -> dict[str, Any]:
    """Register a pharmacy (status ``pending``). Duplicate NCPDP ID → 409."""
    c = ctx()
    rep = args["authorized_representative"]
    row = pharmacies.register(
        c.uow(),
        c.actor,
        c.now,
        ncpdp_id=args["ncpdp_id"],
        name=args["name"],
        representative_name=rep["name"],
        representative_email=rep["email"],
    )
    return _out(row, c.now)


@blp.route("/<uuid:pharmacy_id>", methods=["GET"])
@roles(ADMIN, PHARMACIST)
@blp.response(200, PharmacySchema)
def get(pharmacy_id: UUID) -> dict[str, Any]:
    """A pharmacy; a pharmacist sees only its own."""
    c = ctx()
    return _out(pharmacies.get(c.uow(), c.actor, pharmacy_id), c.now)


@blp.route("/<uuid:pharmacy_id>/certify", methods=["POST"])
@roles(ADMIN)
@blp.arguments(PharmacyCertifySchema)
@blp.response(200, PharmacySchema)
def certify(args: dict[str, Any], pharmacy_id: UUID) -> dict[str, Any]:
    """Certify, or renew, for the certification period of the program version in force."""
    c = ctx()
    return _out(pharmacies.certify(c.uow(), c.actor, c.now, c.program, pharmacy_id, args["attestations"]), c.now)


@blp.route("/<uuid:pharmacy_id>/suspend", methods=["POST"])
@roles(ADMIN)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PharmacySchema)
def suspend(args: dict[str, Any], pharmacy_id: UUID) -> dict[str, Any]:
    """Suspend a certified pharmacy."""
    c = ctx()
    return _out(pharmacies.suspend(c.uow(), c.actor, c.now, pharmacy_id, args.get("reason")), c.now)


@blp.route("/<uuid:pharmacy_id>/reinstate", methods=["POST"])
@roles(ADMIN)
@blp.arguments(EmptySchema)
@blp.response(200, PharmacySchema)
def reinstate(_args: dict[str, Any], pharmacy_id: UUID) -> dict[str, Any]:
    """Reinstate a suspended pharmacy."""
    c = ctx()
    return _out(pharmacies.reinstate(c.uow(), c.actor, c.now, pharmacy_id), c.now)


@blp.route("/<uuid:pharmacy_id>/decertify", methods=["POST"])
@roles(ADMIN)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PharmacySchema)
def decertify(args: dict[str, Any], pharmacy_id: UUID) -> dict[str, Any]:
    """Decertify (final)."""
    c = ctx()
    return _out(pharmacies.decertify(c.uow(), c.actor, c.now, pharmacy_id, args.get("reason")), c.now)
