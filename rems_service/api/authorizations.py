"""Prescription authorizations — the prescriber's step (R-AUTH-1 to R-AUTH-4)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import RAISE

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.common import OptionalReasonSchema
from rems_service.schemas.decisions import AuthorizationCreateSchema, AuthorizationSchema, DecisionSchema
from rems_service.schemas.lists import AuthorizationListQuerySchema, AuthorizationPageSchema
from rems_service.services import authorizations
from workflows.actors import UserRole

from . import decisions

blp = protect(
    Blueprint(
        "authorizations", __name__, url_prefix="/api/v1/authorizations", description="Prescription authorizations"
    )
)

#: One instance for every request (webargs builds one per request from a class; a
#: schema holds no per-load state): a decision request's body is parsed without it.
_CREATE_BODY = AuthorizationCreateSchema()


def _present(view: authorizations.AuthorizationView) -> dict[str, Any]:
    return view.as_dict()


@blp.route("", methods=["POST"])
@roles(UserRole.PRESCRIBER)
@blp.arguments(_CREATE_BODY)
@blp.response(201, DecisionSchema)
@blp.alt_response(404, description="No patient has this `patient_id`; nothing was decided.")
@blp.doc(parameters=[decisions.IDEMPOTENCY_PARAMETER])
def create(args: dict[str, Any]) -> Response:
    """Decide an authorization for the calling prescriber's patient (R-AUTH-1).

    Always 201 with a Decision when the request is well formed: a denial
    lists every failing reason. Unknown patient → 404."""
    c = ctx()
    command = authorizations.AuthorizationCommand.of(**args)
    answer = authorizations.request(
        c.uow,
        c.actor,
        c.now,
        c.program,
        command,
        idempotency_key=decisions.idempotency_key(),
        request_body=decisions.guarded_body(args),
    )
    return decisions.respond(answer)


@blp.route("", methods=["GET"])
@roles(UserRole.ADMIN, UserRole.PRESCRIBER)
@blp.arguments(AuthorizationListQuerySchema, location="query", unknown=RAISE)
@blp.response(200, AuthorizationPageSchema)
def list_authorizations(args: dict[str, Any]) -> dict[str, Any]:
    """A prescriber's own authorizations (every one for admins), newest first; `next_cursor` fetches the next page.

    `status` is the status at the request's time, as `GET /authorizations/{number}`
    reports it. Pharmacists read an authorization by its number but may not list them."""
    c = ctx()
    page = authorizations.listing(c.uow(), c.actor, c.now, **args)
    items = [
        {
            **item.authorization.model_dump(),
            "status": item.status,
            "confirmation_expires_at": item.confirmation_expires_at,
        }
        for item in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@blp.route("/<string:number>", methods=["GET"])
@roles(UserRole.ADMIN, UserRole.PRESCRIBER, UserRole.PHARMACIST)
@blp.response(200, AuthorizationSchema)
def get(number: str) -> dict[str, Any]:
    """The authorization and its status now (its prescriber, any pharmacist, admins).

    A pharmacist sees what dispensing needs only (minimum necessary): `number`,
    `status`, `rems_patient_id`, `risk_category`, `days_supply`, `quantity`,
    `strength_mg`, `issued_at` and `expires_at` — never `status_reason` (a clinical
    reason or the prescriber's free text) nor the prescriber."""
    c = ctx()
    return _present(authorizations.get(c.uow(), c.actor, c.now, number))


@blp.route("/<string:number>/void", methods=["POST"])
@roles(UserRole.PRESCRIBER)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, AuthorizationSchema)
def void(args: dict[str, Any], number: str) -> dict[str, Any]:
    """Void an open authorization (its prescriber); a confirmation not yet handed over is voided too."""
    c = ctx()
    return _present(authorizations.void(c.uow(), c.actor, c.now, c.program, number, args.get("reason")))
