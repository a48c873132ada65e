"""Bearer-token authentication (flask-httpauth) and role checks.

``protect(blp)`` authenticates every request to a blueprint in its
``before_request``, so a missing or bad token is a 401 before anything else
is looked at (path objects, body, query); the request context
(``rems_service.context``) is built right after. Each view then names the
roles that may call it with ``@roles(...)``, placed directly under
``@blp.route`` and above ``@blp.arguments``, so a forbidden caller gets 403
before its body is validated. Object ownership (a prescriber's own patients,
a pharmacist's own pharmacy) is checked by the services.

Both errors use the API's JSON error body (``api.errors``); a 401 carries
``WWW-Authenticate: Bearer realm=...`` (RFC 6750, with ``error="invalid_token"``
when a token was presented but is not valid).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import request
from flask_httpauth import HTTPTokenAuth
from flask_smorest import Blueprint, abort
from sqlalchemy.exc import DBAPIError

from rems_service.context import begin, ctx
from rems_service.ratelimit import limit_failed_authentication
from rems_service.runtime import get_runtime
from rems_service.services import users
from rems_service.services.errors import Forbidden
from workflows.actors import Actor, UserRole

#: The OpenAPI security scheme every protected operation requires (declared in ``api.init_app``).
SECURITY_SCHEME = "bearerAuth"
BEARER: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}]

auth = HTTPTokenAuth(scheme="Bearer", realm="Lenalidomide REMS")

View = TypeVar("View", bound=Callable[..., Any])


def actor_for_token(token: str) -> Actor | None:
    """The caller's actor. This is the request's first statement on its connection: if it
    finds the pooled connection dropped (a database restart, an idle timeout), it retries
    once on a fresh one — what a pre-ping on every checkout would cost every request.
    Token expiry is judged on the real clock: a sandbox X-Rems-Now never revives a token."""
    runtime = get_runtime()
    try:
        return users.authenticate(runtime.read(), token.strip(), datetime.now(UTC))
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        runtime.release_request_connection()
        return users.authenticate(runtime.read(), token.strip(), datetime.now(UTC))


@auth.verify_token
def _verify_token(token: str) -> Actor | None:
    return actor_for_token(token)


@auth.error_handler
def _refuse(status: int) -> None:
    """Raise (``flask_smorest.abort``) the API's JSON error instead of flask-httpauth's plain-text one."""
    if status != 401:  # pragma: no cover - roles are checked by ``roles``, not by flask-httpauth
        abort(status)
    challenge = auth.authenticate_header()
    if _presented_token() is None:
        abort(
            401,
            message="A bearer token is required.",
            errors={"Authorization": ["Missing or not a Bearer token."]},
            headers={"WWW-Authenticate": challenge},
        )
    abort(
        401,
        message="The bearer token is not valid.",
        errors={"Authorization": ["Unknown, replaced or expired token, or its user is disabled."]},
        headers={"WWW-Authenticate": f'{challenge}, error="invalid_token"'},
    )


def _presented_token() -> str | None:
    presented = request.authorization
    if presented is None or presented.type.lower() != "bearer" or not (presented.token or "").strip():
        return None
    return presented.token


@auth.login_required
def _authenticate() -> None:
    actor = auth.current_user()
    if actor is None:
        # flask-httpauth lets OPTIONS through unchecked (for CORS preflights); this API
        # has no cross-origin callers, so OPTIONS needs a valid token like any method.
        token = _presented_token()
        actor = _verify_token(token) if token else None
    if actor is None:
        _refuse(401)
    else:
        begin(actor)


def protect(blp: Blueprint) -> Blueprint:
    """Require a valid bearer token on every route of ``blp`` and build the request context;
    each 401 counts against the caller's address (``ratelimit``)."""
    blp.before_request(_authenticate)
    return limit_failed_authentication(blp)


def _docstring_description(view: Callable[..., Any]) -> str:
    """The description flask-smorest takes from a docstring: everything after the summary paragraph."""
    _summary, _, description = inspect.cleandoc(view.__doc__ or "").partition("\n\n")
    return description.strip()


def roles(*allowed: UserRole) -> Callable[[View], View]:
    """Let only ``allowed`` roles call the view (403 otherwise).

    Also documents the operation through flask-smorest's ``Blueprint.doc``: the
    bearer security requirement, and the docstring's description followed by a
    ``Roles: ...`` note.
    """
    names = frozenset(role.value for role in allowed)
    note = f"Roles: {', '.join(sorted(names))}."

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            role = ctx().actor.role
            if role not in names:
                raise Forbidden(f"The {role} role may not perform this operation.")
            return view(*args, **kwargs)

        description = f"{_docstring_description(view)}\n\n{note}".strip()
        # ``wraps`` keeps the view's name and docstring; ``guarded`` takes and returns what the view does.
        return Blueprint.doc(security=BEARER, description=description)(cast(View, guarded))

    return decorator
