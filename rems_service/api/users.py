"""Users — admin only."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.lists import EmptyQuerySchema, MeSchema
from rems_service.schemas.users import UserCreatedSchema, UserCreateSchema
from rems_service.services import users
from workflows.actors import UserRole

blp = protect(Blueprint("users", __name__, url_prefix="/api/v1/users", description="API users and their tokens"))
#: ``GET /api/v1/me``: outside ``/users``, for every role.
me_blp = protect(Blueprint("me", __name__, url_prefix="/api/v1", description="The caller"))


@blp.route("", methods=["POST"])
@roles(UserRole.ADMIN)
@blp.arguments(UserCreateSchema)
@blp.response(201, UserCreatedSchema)
def create_user(args: dict[str, Any]) -> dict[str, Any]:
    """Create a user; the bearer token is returned only in this response."""
    c = ctx()
    user, token = users.create_user(c.uow(), c.actor, c.now, **args)
    return {**user.model_dump(), "token": token}


@me_blp.route("/me", methods=["GET"])
@roles(*UserRole)
@me_blp.arguments(EmptyQuerySchema, location="query", unknown=RAISE)
@me_blp.response(200, MeSchema)
@me_blp.alt_response(404, description="The caller's user no longer exists.")
def me(_args: dict[str, Any]) -> dict[str, Any]:
    """The caller: user id, name, role, the prescriber or pharmacy it acts for, and its training."""
    c = ctx()
    found = users.me(c.uow(), c.actor, c.now)
    return {**found.user.model_dump(exclude={"token_hash", "password_hash"}), "trained": found.trained}
