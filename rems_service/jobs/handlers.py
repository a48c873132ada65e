"""What happens to each domain event, and the job bodies behind the RQ entrypoints.

Every function takes the runtime and ids, opens fresh units of work, and is
idempotent: handling an event twice (a relay re-send) or running a job
twice (an RQ retry, a sweep catching up) changes nothing the second time.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from rems_service.db.models import OutboxEvent, Patient, ProcessedEvent
from rems_service.runtime import Runtime
from rems_service.services import sweeps, webhooks

from .dispatch import Dispatcher

log = logging.getLogger(__name__)

TASKS = "rems_service.jobs.tasks"
#: Events after which a patient's next test or survey may have moved.
PATIENT_EVENTS = ("patient.enrolled", "pregnancy_test.recorded", "patient_survey.recorded", "patient.therapy_started")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def follow_ups(session: Session, event: OutboxEvent) -> list[tuple[datetime, str, str, str]]:
    """The per-entity jobs an event schedules: ``(when, task, id, deterministic job id)``."""
    data = event.payload
    out: list[tuple[datetime, str, str, str]] = []
    if event.type == "authorization.issued" and data.get("authorization_id") and _when(data.get("valid_until")):
        auth_id, expires = data["authorization_id"], _when(data["valid_until"])
        out.append((expires, f"{TASKS}.expire_authorization", auth_id, f"authorization-expiry-{auth_id}"))
        out.append(
            (
                expires - sweeps.AUTHORIZATION_EXPIRY_AHEAD,
                f"{TASKS}.remind_authorization_expiring",
                auth_id,
                f"authorization-expiring-{auth_id}",
            )
        )
    elif event.type == "dispense.approved" and data.get("dispense_id") and _when(data.get("valid_until")):
        out.append(
            (
                _when(data["valid_until"]),
                f"{TASKS}.lapse_confirmation",
                data["dispense_id"],
                f"dispense-lapse-{data['dispense_id']}",
            )
        )
    elif event.type in PATIENT_EVENTS and data.get("patient_id"):
        patient = session.get(Patient, uuid.UUID(data["patient_id"]))
        for due, ahead, kind in (
            (patient.next_test_due_at if patient else None, sweeps.TEST_DUE_AHEAD, "test"),
            (patient.next_survey_due_at if patient else None, sweeps.SURVEY_DUE_AHEAD, "survey"),
        ):
            if due is not None:
                out.append(
                    (
                        due - ahead,
                        f"{TASKS}.remind_patient",
                        data["patient_id"],
                        f"patient-{kind}-due-{data['patient_id']}-{int(due.timestamp())}",
                    )
                )
    return out


def handle_event(runtime: Runtime, event_id: str) -> bool:
    """Fan the event out to webhook deliveries and schedule its follow-ups, once."""
    now = utcnow()
    key = uuid.UUID(event_id)
    with runtime.uow() as uow:
        session = uow.session
        event = session.get(OutboxEvent, key)
        if event is None or session.get(ProcessedEvent, key) is not None:
            return False
        session.add(ProcessedEvent(event_id=key, handled_at=now))
        try:
            session.flush()
        except IntegrityError:  # another handler got there first
            return False
        deliveries = webhooks.fan_out(session, event, now)
        scheduled = follow_ups(session, event)
        uow.commit()
    dispatcher = Dispatcher(runtime)
    try:
        for delivery_id in deliveries:
            dispatcher.enqueue(f"{TASKS}.deliver_webhook", str(delivery_id), job_id=f"webhook-{delivery_id}-1")
        for when, task, entity_id, job_id in scheduled:
            dispatcher.enqueue_at(when, task, entity_id, job_id=job_id)
    except Exception as exc:  # the rows are in the database; the sweeps will do it
        log.warning("could not enqueue follow-ups", extra={"event_id": event_id, "error": type(exc).__name__})
    return True


def deliver_webhook(runtime: Runtime, delivery_id: str) -> bool | None:
    """One attempt; on failure the next is scheduled (and the retry sweep is the backstop)."""
    result = webhooks.attempt(runtime.uow, runtime.settings, uuid.UUID(delivery_id), utcnow)
    if result is None:
        return None
    if result.next_attempt_at is not None:
        try:
            Dispatcher(runtime).enqueue_at(
                result.next_attempt_at,
                f"{TASKS}.deliver_webhook",
                delivery_id,
                job_id=f"webhook-{delivery_id}-{result.attempt + 1}",
            )
        except Exception as exc:
            log.warning(
                "could not schedule a webhook retry", extra={"delivery_id": delivery_id, "error": type(exc).__name__}
            )
    return result.delivered


def run_sweeps(runtime: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Every periodic sweep once, then due webhook retries, then the outbox relay."""
    from .relay import relay_outbox

    now = now or utcnow()
    report = sweeps.run(runtime.uow, runtime.program, now)
    for delivery_id in webhooks.due(runtime.uow(), now):
        outcome = webhooks.attempt(runtime.uow, runtime.settings, delivery_id, lambda: max(now, utcnow()))
        if outcome is not None:
            report.add("webhook_attempts", 1)
    report.add("events_relayed", relay_outbox(runtime))
    return report.counts
