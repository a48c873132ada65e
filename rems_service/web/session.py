"""Signing in and out of the portal (UI.md, "Sign-in"), and the session of every page.

Flask-Login keeps the user's id in Flask's signed session cookie; each request
loads the user again through ``users.load_active`` (one service function, so a
user who may no longer act is signed out at its next request). A session ends
after ``PORTAL_IDLE_MINUTES`` without a request, measured on the request clock
(``X-Rems-Now`` in sandbox and test moves it like any other time), and on
**Sign out**.

Failed sign-ins are throttled by the service's one rate limiter
(``rems_service.ratelimit``: Flask-Limiter, on Redis when ``REDIS_URL`` is set,
else this process's memory): per email (``RATE_LIMIT_FAILED_SIGN_IN``) and per
client address (``RATE_LIMIT_FAILED_AUTH``). Only failures count, and a limit is
a window: once it has passed, the right password works again, so guessing cannot
lock a person out for good. A throttled sign-in gets the portal's HTML 429 page
with ``Retry-After``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter import RateLimitExceeded
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from rems_service import ratelimit
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


@bp.errorhandler(429)
def _throttled(exc: Exception) -> Response:
    """The 429 page of a throttled sign-in: how long to wait, and a ``Retry-After`` header
    (the shared limiter's; a blueprint handler, so the API's JSON 429 is not used here)."""
    if isinstance(exc, RateLimitExceeded):
        ratelimit.refused(exc)  # logged and counted like the API's
    seconds = ratelimit.retry_after_seconds()
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
@ratelimit.sign_in_limits
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
        ratelimit.record_failed_sign_in()
        error = SIGN_IN_FAILED
    elif request.method == "POST":
        ratelimit.record_failed_sign_in()
    return render_template("login.html", form=form, error=error), 200


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out (the **Sign out** button of every page); the session ends at once."""
    _sign_out("You are signed out.")
    return redirect(url_for("session.login"))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
