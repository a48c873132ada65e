"""Users — admin only."""

from __future__ import annotations

from types import SimpleNamespace

from flask_smorest import Blueprint

from rems_service.auth import current_actor, protect, roles
from rems_service.clock import request_now
from rems_service.db.models import UserRole
from rems_service.runtime import get_runtime
from rems_service.schemas.users import UserCreatedSchema, UserCreateSchema
from rems_service.services import users

blp = protect(Blueprint("users", __name__, url_prefix="/api/v1/users", description="API users and their tokens"))


@blp.route("", methods=["POST"])
@roles(UserRole.ADMIN)
@blp.arguments(UserCreateSchema)
@blp.response(201, UserCreatedSchema)
def create_user(args):
    """Create a user; the bearer token is returned only in this response."""
    user, token = users.create_user(get_runtime().uow(), current_actor(), request_now(), **args)
    return SimpleNamespace(**user.model_dump(), token=token)
