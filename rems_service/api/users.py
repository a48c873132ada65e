"""Users — admin only."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.users import UserCreatedSchema, UserCreateSchema
from rems_service.services import users
from workflows.actors import UserRole

blp = protect(Blueprint("users", __name__, url_prefix="/api/v1/users", description="API users and their tokens"))


@blp.route("", methods=["POST"])
@roles(UserRole.ADMIN)
@blp.arguments(UserCreateSchema)
@blp.response(201, UserCreatedSchema)
def create_user(args: dict[str, Any]) -> dict[str, Any]:
    """Create a user; the bearer token is returned only in this response."""
    c = ctx()
    user, token = users.create_user(c.uow(), c.actor, c.now, **args)
    return {**user.model_dump(), "token": token}
