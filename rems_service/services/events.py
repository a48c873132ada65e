"""Handling a domain event once: the webhook deliveries it owes, and what its follow-up
jobs need to know. The job layer (``rems_service.jobs.handlers``) schedules those jobs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rems_service.db.models import Patient
from rems_service.db.uow import UnitOfWork

from . import webhooks

#: Events after which a patient's next test or survey may have moved.
PATIENT_EVENTS = ("patient.enrolled", "pregnancy_test.recorded", "patient_survey.recorded", "patient.therapy_started")


@dataclass(frozen=True)
class HandledEvent:
    """An event whose effects were just made: its type and payload, the webhook
    deliveries created for it, and (after a patient event) when the patient's next
    pregnancy test and survey are due."""

    type: str
    payload: dict[str, Any]
    deliveries: list[uuid.UUID]
    next_test_due_at: datetime | None = None
    next_survey_due_at: datetime | None = None


def handle(uow: UnitOfWork, event_id: uuid.UUID, now: datetime) -> HandledEvent | None:
    """Make the event's effects once; None if it is unknown or was handled already."""
    with uow:
        event = uow.outbox.event(event_id)
        if event is None or not uow.outbox.mark_handled(event_id, now):
            return None
        deliveries = webhooks.fan_out(uow.webhooks, event, now)
        patient = None
        if event.type in PATIENT_EVENTS and event.payload.get("patient_id"):
            patient = uow.repo.get(Patient, uuid.UUID(event.payload["patient_id"]))
        uow.commit()
        return HandledEvent(
            type=event.type,
            payload=event.payload,
            deliveries=deliveries,
            next_test_due_at=patient.next_test_due_at if patient else None,
            next_survey_due_at=patient.next_survey_due_at if patient else None,
        )
