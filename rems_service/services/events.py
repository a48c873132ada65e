"""Domain events, written to the transactional outbox with the change that caused them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from sqlmodel import Session

from rems_service.db.engine import database_now
from rems_service.db.models import OutboxEvent
from workflows.audit import canonical_json


#: Every event type the service emits (what a webhook may subscribe to).
EVENT_TYPES = (
    "authorization.issued", "authorization.denied", "authorization.released",
    "authorization.dispensed", "authorization.expiring", "authorization.expired", "authorization.voided",
    "dispense.approved", "dispense.denied", "dispense.completed", "dispense.reversed", "dispense.lapsed", "dispense.voided",
    "patient.enrolled", "patient.therapy_started", "patient.halted", "patient.needs_intervention",
    "patient.reinstated", "patient.intervention_resolved", "patient.discontinued",
    "pregnancy_test.recorded", "pregnancy_test.due", "pregnancy.reported", "patient_survey.recorded", "patient_survey.due",
    "prescriber.registered", "prescriber.certified", "prescriber.suspended", "prescriber.reinstated", "prescriber.decertified",
    "pharmacy.registered", "pharmacy.certified", "pharmacy.suspended", "pharmacy.reinstated", "pharmacy.decertified",
    "pharmacy.certification_expiring", "pharmacy.certification_expired",
    "user.created",
)


def record(session: Session, event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> OutboxEvent:
    """Add an event to the outbox in the caller's transaction; the relay sends it later."""
    # One database-clock reading per transaction orders its events well enough
    # (the relay sends oldest first) and saves a round trip per event.
    transaction = session.get_transaction()
    cached = session.info.get("outbox_created_at")
    if cached is not None and cached[0] is transaction:
        created_at = cached[1]
    else:
        created_at = database_now(session)
        session.info["outbox_created_at"] = (session.get_transaction(), created_at)
    event = OutboxEvent(
        type=event_type,
        occurred_at=occurred_at,
        created_at=created_at,
        payload=json.loads(canonical_json(dict(data))),
    )
    session.add(event)
    return event
