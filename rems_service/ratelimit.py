"""Rate limits (issue 18): Flask-Limiter, on Redis when ``REDIS_URL`` is set, in memory when embedded.

Three limits, each configurable (``config.settings``):

- failed authentications per client address (``RATE_LIMIT_FAILED_AUTH``): every
  response of a protected API blueprint that is a 401 counts; once the limit is
  reached, every request from that address is a 429 until the window ends, the
  right token included (so a guesser cannot tell a hit from a miss);
- failed portal sign-ins per email (``RATE_LIMIT_FAILED_SIGN_IN``): a sign-in view
  wears ``sign_in_limits`` and calls ``record_failed_sign_in()`` when it refuses;
- requests per token on the decision endpoints (``RATE_LIMIT_DECISIONS``):
  ``POST /authorizations`` and ``POST /dispenses``, and the standard fronts'
  ``POST /ncpdp/script``, ``POST /fhir/GuidanceResponse/$rems-etasu`` and
  ``POST /cds-services/{id}`` (``limit_front``, which also counts their 401s).

Counters are keyed by the client address, or by a SHA-256 prefix of the token or
email (never the secret itself in Redis). Every 429 is made by
``rems_service.api.errors``' ``too_many_requests`` (the API's error body, with
``Retry-After`` from ``_refusal_headers``), or by a standard front's own
handler in its own format; both go through ``refusal``, the one place refusals
are counted.

Redis down: the limits are skipped (logged), so decisions keep working; ``/readyz``
reports the instance degraded meanwhile. One ``Limiter`` serves the process's app
(a Flask extension object like flask-httpauth's ``auth``); its storage is the one
configured by the last ``init_app``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Blueprint as FlaskBlueprint
from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from flask_smorest import Blueprint

from rems_service import metrics

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])

#: The endpoints whose calls are decisions (``blueprint.view``), limited per token: the API's,
#: and the standard fronts' (INTEROP.md: an NCPDP ``REMSRequest`` or ``RxFill`` is a decision;
#: ``$rems-etasu`` and the CDS Hooks services compute requirement states per call).
DECISION_ENDPOINTS = frozenset(
    {
        ("authorizations.create", "POST"),
        ("dispenses.create", "POST"),
        ("ncpdp.script", "POST"),
        ("fhir.rems_etasu", "POST"),
        ("cds_hooks.call", "POST"),
    }
)
#: Set on ``g`` by a sign-in view that refused the credentials (``record_failed_sign_in``).
_FAILED_SIGN_IN = "rems_failed_sign_in"


def client_address() -> str:
    """The caller's address as the WSGI server saw it (behind a proxy, configure ProxyFix)."""
    return request.remote_addr or "unknown"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def token_key() -> str:
    """A counter key for the bearer token presented (its hash, never the token)."""
    presented = request.authorization
    token = (presented.token or "") if presented is not None and presented.type.lower() == "bearer" else ""
    return f"token:{_digest(token.strip())}" if token.strip() else f"address:{client_address()}"


def email_key() -> str:
    """A counter key for the email a sign-in form names (its hash, case and spaces ignored)."""
    email = (request.form.get("email") or "").strip().lower()
    return f"email:{_digest(email)}"


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


def _unauthorized(response: Response) -> bool:
    return response.status_code == 401


def _not_a_decision() -> bool:
    return (request.endpoint, request.method) not in DECISION_ENDPOINTS


limiter = Limiter(
    key_func=client_address,
    # Flask-Limiter's headers read the counter's window from the storage again on every
    # response (one more Redis round trip per request); a 429 gets them from
    # ``_refusal_headers`` instead, the only response a client acts on.
    headers_enabled=False,
    swallow_errors=True,  # storage down: skip the limits, never fail the request
    key_prefix="rems-rate",
)

_failed_auth_by_address = limiter.shared_limit(
    _setting("RATE_LIMIT_FAILED_AUTH"),
    scope="failed-authentication",
    key_func=client_address,
    deduct_when=_unauthorized,
    error_message="Too many failed authentications from this address.",
)
_decisions_by_token = limiter.shared_limit(
    _setting("RATE_LIMIT_DECISIONS"),
    scope="decisions",
    key_func=token_key,
    exempt_when=_not_a_decision,
    error_message="Too many decision requests with this token.",
)


def limit_failed_authentication(blp: Blueprint) -> Blueprint:
    """Count each 401 a protected blueprint answers against the caller's address (``auth.protect``)."""
    _failed_auth_by_address(blp)
    return blp


def limit_decisions(blp: Blueprint) -> Blueprint:
    """Limit the decision endpoints of ``blp`` per bearer token."""
    _decisions_by_token(blp)
    return blp


def limit_front(blp: FlaskBlueprint) -> FlaskBlueprint:
    """A standard front (``interop``): its 401s count against the caller's address and its
    decision endpoints are limited per token, with the same counters as the API's. The front
    renders the 429 in its own format (``refusal`` gives the wording)."""
    _failed_auth_by_address(blp)
    _decisions_by_token(blp)
    return blp


def refusal(exc: RateLimitExceeded) -> str:
    """Log and count a 429 (``refused``) and say what happened, for the error body each
    front renders; ``Retry-After`` is added by ``_refusal_headers``."""
    refused(exc)
    return f"{exc.description} Retry after the number of seconds in the Retry-After header."


def record_failed_sign_in() -> None:
    """Called by a sign-in view that refused the credentials: the attempt counts against
    the client's address and the email it named."""
    g.setdefault(_FAILED_SIGN_IN, True)


def _sign_in_failed(_response: Response) -> bool:
    return bool(g.get(_FAILED_SIGN_IN, False))


def sign_in_limits(view: View) -> View:
    """Decorate a portal sign-in view: failed sign-ins are limited per address and per email."""
    by_email = limiter.limit(
        _setting("RATE_LIMIT_FAILED_SIGN_IN"),
        key_func=email_key,
        deduct_when=_sign_in_failed,
        methods=["POST"],
        error_message="Too many failed sign-ins for this email.",
    )
    by_address = limiter.limit(
        _setting("RATE_LIMIT_FAILED_AUTH"),
        key_func=client_address,
        deduct_when=_sign_in_failed,
        methods=["POST"],
        error_message="Too many failed sign-ins from this address.",
    )
    return cast(View, by_address(by_email(view)))


def limit_name(exc: RateLimitExceeded) -> str:
    """The ``rems_rate_limit_refusals`` label of the limit ``exc`` hit."""
    limit = exc.limit
    if limit.scope == "failed-authentication":
        return "auth_failures_per_address"
    if limit.scope == "decisions":
        return "decisions_per_token"
    if limit.key_func is email_key:
        return "sign_in_failures_per_email"
    if limit.key_func is client_address:
        return "sign_in_failures_per_address"
    return "other"


def refused(exc: RateLimitExceeded) -> str:
    """Count and log one request refused by a limit (where each front makes its 429); its name."""
    name = limit_name(exc)
    metrics.rate_limit_refused(name)
    log.warning("rate limited", extra={"limit": str(exc.limit.limit), "limit_name": name})
    return name


def _refusing_window() -> tuple[RequestLimit | None, float]:
    """The limit that refused this request and when its window ends (read from the storage);
    ``(None, now + 60)`` when no limit refused it or the storage cannot say."""
    try:
        current = limiter.current_limit
        if current is not None:
            return current, current.reset_at
    except Exception as exc:  # the window is read from the storage: if it fails, still a 429
        log.warning("rate limit window unreadable", extra={"error": type(exc).__name__})
    return None, time.time() + 60


def retry_after_seconds() -> int:
    """Seconds until the refusing limit's window ends (at least 1): a 429's ``Retry-After``."""
    return max(1, int(_refusing_window()[1] - time.time()))


def _refusal_headers(response: Response) -> Response:
    """On a 429: ``Retry-After`` (seconds until the limit's window ends) and the
    ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` of the limit that refused, unless the
    responder set its own ``Retry-After`` (the portal's sign-in page)."""
    if response.status_code != 429 or "Retry-After" in response.headers:
        return response
    current, reset_at = _refusing_window()
    headers = {"Retry-After": str(max(1, int(reset_at - time.time())))}
    if current is not None:
        try:
            headers["X-RateLimit-Limit"] = str(current.limit.amount)
            headers["X-RateLimit-Remaining"] = str(current.remaining)
            headers["X-RateLimit-Reset"] = str(int(reset_at))
        except Exception as exc:  # ``remaining`` is read from the storage too
            log.warning("rate limit window unreadable", extra={"error": type(exc).__name__})
    response.headers.update(headers)
    return response


def init_app(app: Flask) -> Limiter:
    """Rate-limit ``app``: counters on ``REDIS_URL`` when set, else in this process's memory."""
    app.config["RATELIMIT_ENABLED"] = bool(app.config.get("RATE_LIMITS_ENABLED", True))
    app.config["RATELIMIT_STORAGE_URI"] = app.config.get("REDIS_URL") or "memory://"
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": 1, "socket_connect_timeout": 1})
    if not app.config.get("REDIS_URL"):
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {}
    limiter.init_app(app)
    app.after_request(_refusal_headers)
    return limiter
