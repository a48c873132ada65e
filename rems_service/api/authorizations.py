"""Prescription authorizations — the prescriber's step (R-AUTH-1 to R-AUTH-4)."""

from __future__ import annotations

from flask_smorest import Blueprint

from rems_service.auth import current_actor, protect, roles
from rems_service.clock import request_now
from rems_service.db.models import UserRole
from rems_service.runtime import get_runtime
from rems_service.schemas.common import OptionalReasonSchema
from rems_service.schemas.decisions import AuthorizationCreateSchema, AuthorizationSchema, DecisionSchema
from rems_service.services import authorizations

from . import decisions

blp = protect(
    Blueprint(
        "authorizations", __name__, url_prefix="/api/v1/authorizations", description="Prescription authorizations"
    )
)


def _view(view: authorizations.AuthorizationView) -> dict:
    return {**view.authorization.model_dump(), "status": view.status}


@blp.route("", methods=["POST"])
@roles(UserRole.PRESCRIBER)
@blp.arguments(AuthorizationCreateSchema)
@blp.response(201, DecisionSchema)
@blp.doc(parameters=[decisions.IDEMPOTENCY_PARAMETER])
def create(args):
    """Decide an authorization for the calling prescriber's patient (R-AUTH-1).

    Always 201 with a Decision when the request is well formed: a denial
    lists every failing reason. Unknown patient → 404."""
    runtime, actor, now = get_runtime(), current_actor(), request_now()
    return decisions.respond(
        actor,
        "authorizations",
        args,
        lambda claim: authorizations.request(
            runtime.uow(), actor, now, runtime.program, render=decisions.render, claim=claim, **args
        ),
    )


@blp.route("/<string:number>", methods=["GET"])
@roles(UserRole.ADMIN, UserRole.PRESCRIBER, UserRole.PHARMACIST)
@blp.response(200, AuthorizationSchema)
def get(number: str):
    """The authorization and its status now (its prescriber, any pharmacist, admins)."""
    return _view(authorizations.get(get_runtime().uow(), current_actor(), request_now(), number))


@blp.route("/<string:number>/void", methods=["POST"])
@roles(UserRole.PRESCRIBER)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, AuthorizationSchema)
def void(args, number: str):
    """Void an open authorization (its prescriber); a confirmation not yet handed over is voided too."""
    runtime = get_runtime()
    return _view(
        authorizations.void(runtime.uow(), current_actor(), request_now(), runtime.program, number, args.get("reason"))
    )
