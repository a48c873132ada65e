"""What the three standard fronts share: the body size cap, the message digest, and bearer
authentication answered in each front's own format (INTEROP.md, "Common")."""

from __future__ import annotations

import hashlib
import logging

from flask import request
from werkzeug.exceptions import HTTPException

from rems_service.auth import actor_for_token
from rems_service.context import begin
from rems_service.services.errors import ServiceError
from workflows.actors import Actor
from workflows.audit import Origin

#: Bodies above this many bytes are refused (413) before anything parses them.
MAX_BODY_BYTES = 256 * 1024


class BodyTooLarge(Exception):
    """The request body is above ``MAX_BODY_BYTES``."""


def read_body() -> bytes:
    """The raw body, at most ``MAX_BODY_BYTES``; ``BodyTooLarge`` as soon as it is known to be
    larger (from ``Content-Length``, or by reading one byte past the cap)."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise BodyTooLarge
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge
    return body


def origin(channel: str, body: bytes) -> Origin:
    """The channel and the SHA-256 of the raw message (the message itself is never stored)."""
    return Origin(channel=channel, message_digest=hashlib.sha256(body).hexdigest())


def authenticate() -> Actor | None:
    """The caller of ``Authorization: Bearer <token>`` (its request context begun), or None."""
    presented = request.authorization
    if presented is None or presented.type.lower() != "bearer" or not (presented.token or "").strip():
        return None
    actor = actor_for_token(presented.token or "")
    if actor is not None:
        begin(actor)
    return actor


log = logging.getLogger("rems.interop")


def unexpected_status(exc: BaseException) -> tuple[int, str]:
    """The status and wording for an error the adapter did not anticipate (raised before its
    view, by the clock header, or by the database), so each front answers it in its own
    format: the service's status for a ``ServiceError``; 503 for a database error (fail
    closed: nothing was decided); 500 otherwise. Logged without the message."""
    if isinstance(exc, ServiceError):
        return exc.status, exc.message
    if isinstance(exc, HTTPException):
        return exc.code or 500, exc.description or "Request refused."
    if type(exc).__module__.split(".")[0] in ("sqlalchemy", "psycopg"):
        log.error("database unavailable", extra={"error": type(exc).__name__})
        return 503, "The database is unavailable; nothing was decided or changed. Retry later."
    # The class only: an exception's text can quote the message's values (names, dates of birth).
    log.error("unexpected error in a standard front", extra={"error": type(exc).__name__})
    return 500, "Internal error; nothing was decided or changed."
