"""The web portal (UI.md): server-rendered pages for people, over the same services as the API.

Every page module defines one blueprint made by ``page_blueprint(...)``, which:

- requires a signed-in user (else a redirect to ``/login``) whose role is one of
  the blueprint's ``roles`` (else the 403 page), and builds the request context
  (``rems_service.context.ctx()``: actor, the request's time, program, units of work)
  exactly as the API's ``auth.protect`` does, so a view is a few lines calling
  the same service function the API view calls;
- checks the CSRF token of every POST (Flask-WTF); a post without one is refused (400);
- renders a ``ServiceError`` raised by a view as its status page (``NotFound`` from
  a service: 404, another tenant's object looks absent, as in the API).

The session (Flask's signed cookie, managed by Flask-Login) is ``HttpOnly``,
``SameSite=Lax``, ``Secure`` outside development/sandbox/test, and ends after
``PORTAL_IDLE_MINUTES`` (15) without a request, measured on the request clock (so
the sandbox clock header moves it too), and on **Sign out**. Every response carries
the security headers of ``SECURITY_HEADERS``: a CSP without inline script or style.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Flask, abort, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from rems_service.services.errors import ServiceError
from workflows.actors import UserRole
from workflows.labs import LOINC

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = str(HERE / "templates")
STATIC = str(HERE / "static")

#: The landing page of each role after sign-in (UI.md).
HOMES: dict[str, str] = {
    UserRole.PHARMACIST.value: "/pharmacy",
    UserRole.PRESCRIBER.value: "/prescriber",
    UserRole.AUDITOR.value: "/audit",
    UserRole.ADMIN.value: "/admin",
}
ROLE_LABELS: dict[str, str] = {
    UserRole.PHARMACIST.value: "Pharmacist",
    UserRole.PRESCRIBER.value: "Prescriber",
    UserRole.AUDITOR.value: "Auditor",
    UserRole.ADMIN.value: "Program staff",
}

#: Content-Security-Policy of every response: only this origin's scripts, styles and
#: images (``data:`` images: Bootstrap's CSS draws its form icons with them); no inline
#: script or style, no framing, forms post only here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

#: The paths under which an unknown address gets the portal's 404 page, not the API's JSON.
PORTAL_PREFIXES = (*HOMES.values(), "/login", "/logout", "/static/portal")

#: The page modules, each with a ``bp`` made by ``page_blueprint``. ``audit`` and
#: ``admin`` are another module owner's; a missing one is skipped until it exists.
PAGE_MODULES = ("session", "pharmacy", "prescriber", "audit", "admin")
OPTIONAL_PAGE_MODULES = frozenset({"audit", "admin"})

csrf = CSRFProtect()

View = TypeVar("View", bound=Callable[..., Any])


def page_blueprint(name: str, import_name: str, url_prefix: str, roles: Iterable[UserRole] | None) -> Blueprint:
    """A portal blueprint whose every route needs a signed-in user of one of ``roles``.

    ``roles=None``: no sign-in required (the sign-in page itself). Templates are
    looked up in ``rems_service/web/templates`` (``base.html`` is the layout)."""
    bp = Blueprint(name, import_name, url_prefix=url_prefix or None, template_folder=TEMPLATES)
    allowed = None if roles is None else frozenset(r.value for r in roles)

    @bp.before_request
    def _guard() -> Response | None:
        # Import here: ``session`` registers the Flask-Login hooks and imports this module.
        from rems_service.web.session import require_signed_in  # noqa: PLC0415

        if request.method == "POST":
            csrf.protect()
        if allowed is None:
            return None
        return require_signed_in(allowed)

    bp.register_error_handler(ServiceError, _service_error_page)
    bp.register_error_handler(CSRFError, _csrf_error_page)
    for status in (400, 403, 404, 405, 409, 422, 503):
        bp.register_error_handler(status, _http_error_page)
    return bp


def roles_required(*roles: UserRole) -> Callable[[View], View]:
    """Narrow one view of a blueprint to ``roles`` (403 for any other signed-in role)."""
    names = frozenset(r.value for r in roles)

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or current_user.role not in names:
                abort(403)
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorator


TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Not possible now",
    422: "Not accepted",
    429: "Too many attempts",
    503: "Unavailable",
}


def when(value: datetime | None) -> Markup:
    """A time for people (``<time datetime=ISO>2026-06-15 12:00 UTC</time>``), or a dash; the
    ``when`` filter (a plain function: the hand-over tables call it for every row)."""
    if value is None:
        return Markup("—")
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), value.strftime("%Y-%m-%d %H:%M UTC"))


def error_page(status: int, message: str) -> tuple[str, int]:
    """The portal's page for an error ``status``, inside the layout (name, role, Sign out)."""
    return render_template("errors/error.html", status=status, title=TITLES.get(status, "Error"), message=message), (
        status
    )


def _service_error_page(exc: ServiceError) -> tuple[str, int]:
    return error_page(exc.status, exc.message)


def _csrf_error_page(exc: CSRFError) -> tuple[str, int]:
    return error_page(400, f"The form was refused: {exc.description} Reload the page and send it again.")


def _http_error_page(exc: Any) -> tuple[str, int]:
    status = int(getattr(exc, "code", 500) or 500)
    default = {
        403: "Your role may not open this page.",
        404: "There is nothing here, or it belongs to someone else.",
    }
    description = default.get(status) or getattr(exc, "description", "") or TITLES.get(status, "Error")
    return error_page(status, description)


def _secret_key(app: Flask) -> str:
    """``REMS_SECRET_KEY``, else a random key kept in the instance folder (mode 0600) so every
    web worker of this machine signs sessions alike and a restart keeps people signed in."""
    configured = app.config.get("SECRET_KEY") or os.environ.get("REMS_SECRET_KEY")
    if configured:
        return str(configured)
    os.makedirs(app.instance_path, exist_ok=True)
    path = os.path.join(app.instance_path, f"secret-key-{app.config.get('ENV_NAME', 'development')}")
    if not os.path.exists(path):
        # Written whole to a private temporary file, then linked into place: a concurrent
        # worker either links first or reads the complete key, never an empty file.
        fd, temporary = tempfile.mkstemp(dir=app.instance_path, prefix=".secret-key-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    with open(path, encoding="ascii") as stored:
        return stored.read().strip()


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        # Portal pages hold PHI: never kept by a shared cache or the browser's back-forward cache.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Register the portal: session settings, Flask-Login, CSRF, Bootstrap's local assets,
    the sign-in throttle, security headers and every page blueprint."""
    from flask_bootstrap import Bootstrap5  # noqa: PLC0415

    from . import decisions, session  # noqa: PLC0415

    env = app.config.get("ENV_NAME", "development")
    app.config["SECRET_KEY"] = _secret_key(app)
    app.config.setdefault("PORTAL_IDLE_MINUTES", 15)
    app.config.update(
        SESSION_COOKIE_NAME="rems_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=env not in ("development", "sandbox", "test"),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=int(app.config["PORTAL_IDLE_MINUTES"])),
        # Flask-WTF: the portal blueprints check CSRF themselves (``page_blueprint``); the JSON
        # API, authenticated by bearer tokens and never by cookies, is not CSRF-prone.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (15 minutes idle)
        BOOTSTRAP_SERVE_LOCAL=True,
        BOOTSTRAP_BOOTSWATCH_THEME=None,
    )
    csrf.init_app(app)
    Bootstrap5(app)
    app.jinja_env.globals.update(ROLE_LABELS=ROLE_LABELS, HOMES=HOMES, labels_of=decisions.labels_of)
    app.jinja_env.globals["LOINC_NAMES"] = {code: c.name for code, c in LOINC.items()}
    app.jinja_env.filters["with_labels"] = decisions.with_labels
    app.jinja_env.filters["when"] = when

    static = Blueprint("portal_static", __name__, static_folder=STATIC, static_url_path="/static/portal")
    app.register_blueprint(static)
    for name in PAGE_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if name in OPTIONAL_PAGE_MODULES and exc.name == f"{__name__}.{name}":
                continue
            raise
        app.register_blueprint(module.bp)
    session.init_app(app)

    @app.route("/")
    def _home() -> Response:
        if current_user.is_authenticated:
            return redirect(HOMES.get(current_user.role, url_for("session.login")))
        return redirect(url_for("session.login"))

    app.after_request(_add_security_headers)

    # A path no route matches has no blueprint, so the app's handler answers: the API's JSON
    # error body. Under the portal's own paths a person gets the portal's page instead.
    api_handler = app.error_handler_spec[None][None].get(HTTPException)

    def _unrouted(exc: HTTPException) -> Any:
        if request.blueprint is None and _is_portal_path(request.path):
            return _http_error_page(exc)
        if api_handler is not None:
            return api_handler(exc)
        return exc

    for status in (404, 405):
        app.register_error_handler(status, _unrouted)


def _is_portal_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PORTAL_PREFIXES)
