"""What the two decision endpoints share: answering with the Decision, and ``Idempotency-Key``."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from rems_service.services import idempotency
from rems_service.services.decisions import DecisionAnswer

#: OpenAPI description of the header, attached to both decision operations.
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": idempotency.HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_LENGTH},
    "description": "Replaying the same key and body returns the first response unchanged (header "
    "`Idempotent-Replayed: true`) and does nothing else; another body is a 422; a replay while the "
    "first is still running is a 409. Keys are scoped to the caller's prescriber or pharmacy.",
}


def guarded_body(args: dict[str, Any]) -> dict[str, Any]:
    """The body an ``Idempotency-Key`` guards: as sent, with no ``acknowledgements`` when none
    were sent (so a request's digest is the one it had before acknowledgements existed)."""
    return {k: v for k, v in args.items() if not (k == "acknowledgements" and not v)}


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` header, if any."""
    return request.headers.get(idempotency.HEADER)


def respond(answer: DecisionAnswer) -> Response:
    """The Decision as answered (201), byte for byte the first answer on a replay."""
    response = current_app.response_class(answer.body, status=answer.status, mimetype="application/json")
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
