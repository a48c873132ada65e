"""Domain events, written to the transactional outbox with the change that caused them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from rems_service.db.engine import transaction_clock
from rems_service.db.models import OutboxEvent, table_of
from workflows.audit import canonical_json


def record(session: Session, event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> None:
    """Add an event to the outbox in the caller's transaction; the relay sends it later."""
    # One database-clock reading per transaction (often the audit entry's) orders
    # its events well enough — the relay sends oldest first — and saves a round trip.
    # A Core insert: nothing reads the row back in this transaction.
    session.execute(
        _INSERT_EVENT,
        {
            "id": uuid.uuid4(),
            "type": event_type,
            "occurred_at": occurred_at,
            "created_at": transaction_clock(session),
            "payload": json.loads(canonical_json(dict(data))),
            "sent_at": None,
            "attempts": 0,
            "last_error": None,
        },
    )


_INSERT_EVENT = insert(table_of(OutboxEvent))
