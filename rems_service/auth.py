"""Bearer-token authentication and role checks.

Every API blueprint authenticates in ``before_request`` (401 before anything
else is looked at); each view then names the roles that may call it with
``@roles(...)``, placed above ``@blp.arguments`` so a forbidden caller gets
403 before its body is validated. Object ownership (a prescriber's own
patients, a pharmacist's own pharmacy) is checked by the services.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request
from flask_smorest import Blueprint

from rems_service.db.models import UserRole
from rems_service.runtime import get_runtime
from rems_service.services import users
from rems_service.services.actor import Actor
from rems_service.services.errors import Forbidden, ServiceError

#: The OpenAPI security requirement attached to every protected operation.
BEARER = [{"bearerAuth": []}]


class Unauthorized(ServiceError):
    status = 401


def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.", {"Authorization": ["Missing or not a Bearer token."]})
    actor = users.authenticate(get_runtime().read(), token.strip())
    if actor is None:
        raise Unauthorized("The bearer token is not valid.", {"Authorization": ["Unknown token."]})
    g.actor = actor


def protect(blp: Blueprint) -> Blueprint:
    """Require a valid bearer token on every route of ``blp``."""
    blp.before_request(_authenticate)
    return blp


def current_actor() -> Actor:
    return g.actor


def roles(*allowed: UserRole) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let only ``allowed`` roles call the view (403 otherwise); documents the bearer scheme."""
    names = {r.value for r in allowed}

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            actor = current_actor()
            if actor.role not in names:
                raise Forbidden(f"The {actor.role} role may not perform this operation.")
            return view(*args, **kwargs)

        apidoc = dict(getattr(wrapper, "_apidoc", {}))
        manual = dict(apidoc.get("manual_doc", {}))
        manual["security"] = BEARER
        manual.setdefault("description", "")
        manual["description"] = (manual["description"] + f"\n\nRoles: {', '.join(sorted(names))}.").strip()
        apidoc["manual_doc"] = manual
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        return wrapper

    return decorator
