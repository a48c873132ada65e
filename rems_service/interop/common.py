"""What the three standard fronts share: the body size cap, the message digest, and bearer
authentication answered in each front's own format (INTEROP.md, "Common")."""

from __future__ import annotations

import hashlib

from flask import request

from rems_service.auth import actor_for_token
from rems_service.context import begin
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
