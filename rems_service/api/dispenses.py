"""Dispenses — the pharmacy's step (R-DISP-1 to R-DISP-5)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import RAISE

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.common import EmptySchema, OptionalReasonSchema
from rems_service.schemas.decisions import DecisionSchema, DispenseCreateSchema, DispenseSchema
from rems_service.schemas.lists import DispenseListQuerySchema, DispensePageSchema
from rems_service.services import dispenses
from workflows.actors import UserRole

from . import decisions

blp = protect(
    Blueprint(
        "dispenses",
        __name__,
        url_prefix="/api/v1/dispenses",
        description="Dispense authorizations and recorded dispenses",
    )
)

#: One instance for every request (webargs builds one per request from a class; a
#: schema holds no per-load state): a decision request's body is parsed without it.
_CREATE_BODY = DispenseCreateSchema()


def _present(view: dispenses.DispenseView) -> dict[str, Any]:
    return {**view.dispense.model_dump(), "status": view.status, "authorization_number": view.authorization_number}


@blp.route("", methods=["POST"])
@roles(UserRole.PHARMACIST)
@blp.arguments(_CREATE_BODY)
@blp.response(201, DecisionSchema)
@blp.doc(parameters=[decisions.IDEMPOTENCY_PARAMETER])
def create(args: dict[str, Any]) -> Response:
    """Decide a dispense authorization (R-DISP-1); approved adds a confirmation number.

    Always 201 with a Decision when the request is well formed: a denial
    lists every failing reason."""
    c = ctx()
    fields = {k: v for k, v in args.items() if k != "acknowledgements"}
    answer = dispenses.request(
        c.uow,
        c.actor,
        c.now,
        c.program,
        dispenses.command(**fields),
        idempotency_key=decisions.idempotency_key(),
        request_body=decisions.guarded_body(args),
        acknowledgements_sent=args.get("acknowledgements"),
    )
    return decisions.respond(answer)


@blp.route("", methods=["GET"])
@roles(UserRole.ADMIN, UserRole.PHARMACIST)
@blp.arguments(DispenseListQuerySchema, location="query", unknown=RAISE)
@blp.response(200, DispensePageSchema)
def list_dispenses(args: dict[str, Any]) -> dict[str, Any]:
    """The pharmacy's dispenses (every pharmacy's for admins); `next_cursor` fetches the next page.

    `status=confirmed` is the hand-over queue: live confirmations by
    `confirmation_expires_at`, least time left first. Any other selection is
    newest first. `status` is the status at the request's time."""
    c = ctx()
    page = dispenses.listing(c.uow(), c.actor, c.now, **args)
    return {"items": [_present(view) for view in page.items], "next_cursor": page.next_cursor}


@blp.route("/<string:number>", methods=["GET"])
@roles(UserRole.ADMIN, UserRole.PHARMACIST)
@blp.response(200, DispenseSchema)
def get(number: str) -> dict[str, Any]:
    """The dispense and its status now (its pharmacy's pharmacists, admins)."""
    c = ctx()
    return _present(dispenses.get(c.uow(), c.actor, c.now, number))


@blp.route("/<string:number>/complete", methods=["POST"])
@roles(UserRole.PHARMACIST)
@blp.arguments(EmptySchema)
@blp.response(200, DispenseSchema)
def complete(_args: dict[str, Any], number: str) -> dict[str, Any]:
    """Record the hand-over within the confirmation window; later → 409 CONFIRMATION_EXPIRED."""
    c = ctx()
    return _present(dispenses.complete(c.uow(), c.actor, c.now, c.program, number))


@blp.route("/<string:number>/reverse", methods=["POST"])
@roles(UserRole.PHARMACIST)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, DispenseSchema)
def reverse(args: dict[str, Any], number: str) -> dict[str, Any]:
    """Reverse a confirmation not yet handed over; the authorization is usable again while valid."""
    c = ctx()
    return _present(dispenses.reverse(c.uow(), c.actor, c.now, c.program, number, args.get("reason")))
