"""Signing in and out of the portal (UI.md, "Sign-in"), and the session of every page.

Flask-Login keeps the user's id in Flask's signed session cookie; each request
loads the user again through ``users.load_active`` (one service function, so a
user who may no longer act is signed out at its next request). A session ends
after ``PORTAL_IDLE_MINUTES`` without a request, measured on the request clock
(``X-Rems-Now`` in sandbox and test moves it like any other time), and on
**Sign out**.

Failed sign-ins are throttled by Flask-Limiter (Redis when ``REDIS_URL`` is set,
else this process's memory): per email (``PORTAL_SIGN_IN_LIMIT_PER_EMAIL``) and
per client address (``PORTAL_SIGN_IN_LIMIT_PER_ADDRESS``). Only failures count,
and a limit is a window: once it has passed, the right password works again, so
guessing cannot lock a person out for good.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from rems_service.clock import request_now
from rems_service.context import begin
from rems_service.runtime import get_runtime
from rems_service.services import users

from . import HOMES, error_page, page_blueprint

bp = page_blueprint("session", __name__, url_prefix="", roles=None)

#: What a wrong email or a wrong password both show (UI.md): nothing tells which.
SIGN_IN_FAILED = "Email or password is incorrect"
#: The session key of the last request's time (ISO, on the request clock).
LAST_SEEN = "rems_seen"

login_manager = LoginManager()
login_manager.login_view = "session.login"
login_manager.login_message = "Sign in to continue."
login_manager.login_message_category = "info"
# "basic": the session is marked non-fresh when the client's address or agent changes.
login_manager.session_protection = "basic"


class PortalUser:
    """The signed-in person, as Flask-Login wants it: the actor of its requests, and its name."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, active: users.ActiveUser):
        self.actor = active.actor
        self.name = active.name

    @property
    def role(self) -> str:
        return self.actor.role

    def get_id(self) -> str:
        return str(self.actor.user_id)


@login_manager.user_loader
def _load_user(user_id: str) -> PortalUser | None:
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        return None
    active = users.load_active(get_runtime().read(), key)
    return None if active is None else PortalUser(active)


def _sign_out(message: str | None = None) -> None:
    logout_user()
    session.clear()
    if message:
        flash(message, "info")


def require_signed_in(allowed: frozenset[str]) -> Response | None:
    """The guard of every portal page but sign-in: a signed-in user (else a redirect to
    /login), not idle too long (else signed out), of an ``allowed`` role (else 403).
    Builds the request context the views read with ``ctx()``."""
    if not current_user.is_authenticated:
        unauthorized: Response = login_manager.unauthorized()
        return unauthorized
    now = request_now()
    idle = current_app.config["PERMANENT_SESSION_LIFETIME"]
    last = _last_seen()
    if now - last >= idle:
        minutes = int(idle.total_seconds() // 60)
        _sign_out(f"You were signed out after {minutes} minutes without activity. Sign in again.")
        return redirect(url_for("session.login", next=_local_path(request.full_path)))
    if now > last:  # a sandbox clock set back does not move it back
        session[LAST_SEEN] = now.isoformat()
    session.permanent = True
    begin(current_user.actor)
    if current_user.role not in allowed:
        return error_page(403, "Your role may not open this page.")  # type: ignore[return-value]
    return None


def _last_seen() -> datetime:
    """The time of the session's last request; a missing or unreadable one counts as idle for ever."""
    seen = session.get(LAST_SEEN)
    try:
        return datetime.fromisoformat(seen) if isinstance(seen, str) else datetime.min.replace(tzinfo=UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(message="Enter your email."), Length(max=254)])
    password = PasswordField(
        "Password", validators=[DataRequired(message="Enter your password."), Length(max=users.MAX_PASSWORD_LENGTH)]
    )


def _local_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site (no scheme, no host): never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target.rstrip("?") or None


def _email_key() -> str:
    email = request.form.get("email", "")
    return "portal-sign-in:email:" + users.normalize_email(email)[:254]


def _address_key() -> str:
    return "portal-sign-in:address:" + get_remote_address()


def _failed(_response: Response) -> bool:
    """Only failed sign-ins count against the limits."""
    return bool(g.get("sign_in_failed"))


def _limit_email() -> str:
    return str(current_app.config["PORTAL_SIGN_IN_LIMIT_PER_EMAIL"])


def _limit_address() -> str:
    return str(current_app.config["PORTAL_SIGN_IN_LIMIT_PER_ADDRESS"])


@bp.errorhandler(429)
def _throttled(_exc: Exception) -> Response:
    """The 429 page of a throttled sign-in: how long to wait, and a ``Retry-After`` header."""
    limiter: Limiter = current_app.extensions["rems_sign_in_limiter"]
    current = limiter.current_limit
    seconds = max(1, int(current.reset_at - time.time())) if current is not None else 60
    minutes = max(1, (seconds + 59) // 60)
    body, status = error_page(
        429,
        f"Too many failed sign-ins. Wait {minutes} minute{'s' if minutes != 1 else ''} and try again, "
        "or ask program staff to reset your password.",
    )
    response = current_app.response_class(body, status=status, mimetype="text/html")
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with email and password; each role lands on its home page."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(HOMES.get(current_user.role, "/"))
    form = SignInForm()
    error = None
    if form.validate_on_submit():
        active = users.sign_in(get_runtime().read(), form.email.data or "", form.password.data or "")
        if active is not None:
            target = _local_path(request.args.get("next"))
            session.clear()  # nothing from before sign-in carries over (session fixation)
            login_user(PortalUser(active))
            session[LAST_SEEN] = request_now().isoformat()
            session.permanent = True
            home = HOMES.get(active.actor.role, "/")
            return redirect(target if target and target.startswith(home) else home)
        g.sign_in_failed = True
        error = SIGN_IN_FAILED
    elif request.method == "POST":
        g.sign_in_failed = True
    return render_template("login.html", form=form, error=error), 200


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out (the **Sign out** button of every page); the session ends at once."""
    _sign_out("You are signed out.")
    return redirect(url_for("session.login"))


def init_app(app: Flask) -> None:
    app.config.setdefault("PORTAL_SIGN_IN_LIMIT_PER_EMAIL", "10 per 15 minutes")
    app.config.setdefault("PORTAL_SIGN_IN_LIMIT_PER_ADDRESS", "100 per 15 minutes")
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "rems")
    # Redis down: the limits fall back to this process's memory instead of failing sign-in.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    login_manager.init_app(app)
    # One limiter per app (its storage is the app's), applied to the sign-in view.
    limiter = Limiter(key_func=get_remote_address, app=app, default_limits=[], headers_enabled=False)
    app.extensions["rems_sign_in_limiter"] = limiter
    endpoint = f"{bp.name}.login"
    view: Any = app.view_functions[endpoint]
    for limit, key in ((_limit_email, _email_key), (_limit_address, _address_key)):
        view = limiter.limit(
            limit,
            key_func=key,
            methods=["POST"],
            deduct_when=_failed,
            on_breach=_throttled,  # type: ignore[arg-type]
        )(view)
    app.view_functions[endpoint] = view
