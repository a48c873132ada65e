"""Users — admin only."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import RAISE

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.common import EmptySchema
from rems_service.schemas.lists import EmptyQuerySchema, MeSchema, PageQuerySchema
from rems_service.schemas.users import (
    TokenIssuedSchema,
    TokenRequestSchema,
    UserAccountSchema,
    UserCreatedSchema,
    UserCreateSchema,
    UserPageSchema,
)
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


def _account(user: Any) -> dict[str, Any]:
    return {**user.model_dump(exclude={"token_hash"}), "disabled": user.disabled_at is not None}


@blp.route("", methods=["GET"])
@roles(UserRole.ADMIN)
@blp.arguments(PageQuerySchema, location="query", unknown=RAISE)
@blp.response(200, UserPageSchema)
def list_users(args: dict[str, Any]) -> dict[str, Any]:
    """Every user, oldest first, with whether it is disabled and when its token expires (never the token)."""
    c = ctx()
    page = users.list_users(c.uow(), c.actor, args.get("cursor"), args["limit"])
    return {"items": [_account(u) for u in page.items], "next_cursor": page.next_cursor}


@blp.route("/<uuid:user_id>/disable", methods=["POST"])
@roles(UserRole.ADMIN)
@blp.arguments(EmptySchema)
@blp.response(200, UserAccountSchema)
@blp.alt_response(404, description="No user has this id.")
def disable(_args: Any, user_id: UUID) -> dict[str, Any]:
    """Disable a user: its tokens and portal sessions are refused from the next request on.

    Disabling a disabled user changes nothing. An admin cannot disable itself (409)."""
    c = ctx()
    return _account(users.disable_user(c.uow(), c.actor, c.now, user_id))


@blp.route("/<uuid:user_id>/enable", methods=["POST"])
@roles(UserRole.ADMIN)
@blp.arguments(EmptySchema)
@blp.response(200, UserAccountSchema)
@blp.alt_response(404, description="No user has this id.")
def enable(_args: Any, user_id: UUID) -> dict[str, Any]:
    """Enable a disabled user: its current token works again (unless it expired)."""
    c = ctx()
    return _account(users.enable_user(c.uow(), c.actor, c.now, user_id))


@blp.route("/<uuid:user_id>/token", methods=["POST"])
@roles(UserRole.ADMIN)
@blp.arguments(TokenRequestSchema)
@blp.response(200, TokenIssuedSchema)
@blp.alt_response(404, description="No user has this id.")
def rotate_token(args: dict[str, Any], user_id: UUID) -> dict[str, Any]:
    """Issue a new token for the user (shown only in this response); the old one is refused from the next request.

    `expires_at` (optional) bounds the new token's life."""
    c = ctx()
    user, token = users.rotate_token(c.uow(), c.actor, c.now, user_id, args.get("expires_at"))
    return {"id": user.id, "token": token, "token_expires_at": user.token_expires_at}


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
