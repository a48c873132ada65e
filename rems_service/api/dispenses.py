"""Dispenses — the pharmacy's step (R-DISP-1 to R-DISP-5)."""

from __future__ import annotations

from flask_smorest import Blueprint

from rems_service.auth import current_actor, protect, roles
from rems_service.clock import request_now
from rems_service.db.models import UserRole
from rems_service.runtime import get_runtime
from rems_service.schemas.common import EmptySchema, OptionalReasonSchema
from rems_service.schemas.decisions import DecisionSchema, DispenseCreateSchema, DispenseSchema
from rems_service.services import dispenses

from . import decisions

blp = protect(
    Blueprint(
        "dispenses",
        __name__,
        url_prefix="/api/v1/dispenses",
        description="Dispense authorizations and recorded dispenses",
    )
)


def _view(view: dispenses.DispenseView) -> dict:
    return {**view.dispense.model_dump(), "status": view.status, "authorization_number": view.authorization_number}


@blp.route("", methods=["POST"])
@roles(UserRole.PHARMACIST)
@blp.arguments(DispenseCreateSchema)
@blp.response(201, DecisionSchema)
@blp.doc(parameters=[decisions.IDEMPOTENCY_PARAMETER])
def create(args):
    """Decide a dispense authorization (R-DISP-1); approved adds a confirmation number.

    Always 201 with a Decision when the request is well formed: a denial
    lists every failing reason."""
    runtime, actor, now = get_runtime(), current_actor(), request_now()
    return decisions.respond(
        actor,
        "dispenses",
        args,
        lambda claim: dispenses.request(
            runtime.uow, actor, now, runtime.program, render=decisions.render, claim=claim, **args
        ),
    )


@blp.route("/<string:number>", methods=["GET"])
@roles(UserRole.ADMIN, UserRole.PHARMACIST)
@blp.response(200, DispenseSchema)
def get(number: str):
    """The dispense and its status now (its pharmacy's pharmacists, admins)."""
    return _view(dispenses.get(get_runtime().uow(), current_actor(), request_now(), number))


@blp.route("/<string:number>/complete", methods=["POST"])
@roles(UserRole.PHARMACIST)
@blp.arguments(EmptySchema)
@blp.response(200, DispenseSchema)
def complete(_args, number: str):
    """Record the hand-over within the confirmation window; later → 409 CONFIRMATION_EXPIRED."""
    runtime = get_runtime()
    return _view(dispenses.complete(runtime.uow(), current_actor(), request_now(), runtime.program, number))


@blp.route("/<string:number>/reverse", methods=["POST"])
@roles(UserRole.PHARMACIST)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, DispenseSchema)
def reverse(args, number: str):
    """Reverse a confirmation not yet handed over; the authorization is usable again while valid."""
    runtime = get_runtime()
    return _view(
        dispenses.reverse(runtime.uow(), current_actor(), request_now(), runtime.program, number, args.get("reason"))
    )
