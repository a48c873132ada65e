"""Domain events, written to the transactional outbox with the change that caused them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from sqlmodel import Session

from rems_service.db.engine import database_now
from rems_service.db.models import OutboxEvent
from workflows.audit import canonical_json


def record(session: Session, event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> OutboxEvent:
    """Add an event to the outbox in the caller's transaction; the relay sends it later."""
    event = OutboxEvent(
        type=event_type,
        occurred_at=occurred_at,
        created_at=database_now(session),
        payload=json.loads(canonical_json(dict(data))),
    )
    session.add(event)
    return event
