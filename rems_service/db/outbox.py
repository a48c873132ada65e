"""Domain events, written to the transactional outbox with the change that caused them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from rems_service.db.engine import database_now, transaction_clock
from rems_service.db.models import OutboxEvent, ProcessedEvent, table_of
from workflows.audit import canonical_json


def record(session: Session, event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> None:
    """Add an event to the outbox in the caller's transaction; the relay sends it later."""
    # One database-clock reading per transaction (often the audit entry's) orders
    # its events well enough — the relay sends oldest first — and saves a round trip.
    # A Core insert: nothing reads the row back in this transaction.
    session.execute(_INSERT_EVENT, event_values(event_type, occurred_at, transaction_clock(session), data))


def event_values(
    event_type: str, occurred_at: datetime, created_at: datetime, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The outbox row of an event (its payload as the database will hand it back)."""
    return {
        "id": uuid.uuid4(),
        "type": event_type,
        "occurred_at": occurred_at,
        "created_at": created_at,
        "payload": json.loads(canonical_json(dict(data))),
        "sent_at": None,
        "attempts": 0,
        "last_error": None,
    }


_INSERT_EVENT = insert(table_of(OutboxEvent))


class OutboxStore:
    """The outbox's rows and the record of handled events, on one session."""

    def __init__(self, session: Session):
        self.session = session

    def database_now(self) -> datetime:
        return database_now(self.session)

    def event(self, event_id: uuid.UUID) -> OutboxEvent | None:
        return self.session.get(OutboxEvent, event_id)

    def mark_handled(self, event_id: uuid.UUID, now: datetime) -> bool:
        """Record that the event's effects are being made, once: False if they already were
        (a re-sent event, or another handler that got there first)."""
        if self.session.get(ProcessedEvent, event_id) is not None:
            return False
        try:
            with self.session.begin_nested():
                self.session.add(ProcessedEvent(event_id=event_id, handled_at=now))
                self.session.flush()
        except IntegrityError:
            return False
        return True

    def lock_unsent(self, limit: int) -> Sequence[OutboxEvent]:
        """Up to ``limit`` unsent events, oldest first, locked; rows another relay holds are skipped."""
        return self.session.exec(
            select(OutboxEvent)
            .where(col(OutboxEvent.sent_at).is_(None))
            .order_by(col(OutboxEvent.created_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()

    def unsent_ids(self, limit: int) -> list[uuid.UUID]:
        return list(
            self.session.exec(
                select(OutboxEvent.id)
                .where(col(OutboxEvent.sent_at).is_(None))
                .order_by(col(OutboxEvent.created_at))
                .limit(limit)
            ).all()
        )

    def mark_sent(self, event_id: uuid.UUID) -> bool:
        row = self.session.get(OutboxEvent, event_id)
        if row is None or row.sent_at is not None:
            return False
        row.sent_at = database_now(self.session)
        return True

    def unsent_state(self) -> tuple[int, datetime | None]:
        """How many events wait to be relayed, and when the oldest of them was written
        (the ``ix_outbox_events_unsent`` index answers both)."""
        count, oldest = self.session.exec(
            select(func.count(), func.min(OutboxEvent.created_at)).where(col(OutboxEvent.sent_at).is_(None))
        ).one()
        return int(count), oldest
