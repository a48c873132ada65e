"""What the two decision endpoints share: the Decision body and ``Idempotency-Key``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request

from rems_service.runtime import get_runtime
from rems_service.schemas.decisions import DecisionSchema
from rems_service.services import idempotency
from rems_service.services.actor import Actor
from rems_service.services.authorizations import DecisionResult

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

_schema = DecisionSchema()


def render(result: DecisionResult) -> str:
    """The Decision body, rendered once and stored for idempotent replays."""
    record = result.record
    body: dict[str, Any] = {
        "id": record.id,
        "decision": record.outcome,
        "reasons": record.reasons,
        "evaluated_at": record.evaluated_at,
        "program_version": record.program_version,
        "audit_seq": record.audit_seq,
    }
    if result.authorization is not None:
        auth = result.authorization
        body.update(authorization_number=auth.number, rems_patient_id=auth.rems_patient_id)
        if result.dispense is None:
            body.update(risk_category=auth.risk_category, days_supply=auth.days_supply, expires_at=auth.expires_at)
    if result.dispense is not None:
        dispense = result.dispense
        body.update(
            confirmation_number=dispense.confirmation_number,
            confirmation_expires_at=dispense.confirmation_expires_at,
            days_supply=dispense.days_supply,
        )
    return _schema.dumps(body)


def respond(actor: Actor, endpoint: str, args: Any, execute: Callable[[idempotency.Claim | None], str]):
    """Run ``execute`` under the request's ``Idempotency-Key`` (if any) and answer 201."""
    stored, replayed = idempotency.run(
        get_runtime().uow, actor, endpoint, request.headers.get(idempotency.HEADER), args, execute
    )
    response = current_app.response_class(stored.body, status=stored.status, mimetype="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
