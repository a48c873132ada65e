"""What happens to each domain event, and the per-entity jobs it schedules.

Each job here is defined once, takes string ids only, finds its runtime with
``job_runtime()`` and is enqueued by reference through a ``Dispatcher`` (which
decides whether it runs on a worker or in this process: the jobs do not know).
Every job opens fresh units of work and is idempotent: handling an event twice
(a relay re-send) or running a job twice (an RQ retry, a sweep catching up)
changes nothing the second time.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from rems_service.services import events, sweeps, webhooks
from rems_service.services.events import HandledEvent

from .dispatch import Job, detachable, dispatcher_for, job_runtime

log = logging.getLogger(__name__)


def webhook_job_id(delivery_id: object, attempt: int) -> str:
    """The deterministic id of a delivery's attempt job (a re-sent event enqueues nothing new)."""
    return f"webhook-{delivery_id}-{attempt}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def expire_authorization(authorization_id: str) -> bool:
    rt = job_runtime()
    return sweeps.expire_authorization(rt.uow(), rt.program, utcnow(), uuid.UUID(authorization_id))


def lapse_confirmation(dispense_id: str) -> bool:
    rt = job_runtime()
    return sweeps.lapse_confirmation(rt.uow(), rt.program, utcnow(), uuid.UUID(dispense_id))


def remind_authorization_expiring(authorization_id: str) -> bool:
    return sweeps.remind_authorization_expiring(job_runtime().uow(), utcnow(), uuid.UUID(authorization_id))


def remind_patient(patient_id: str) -> list[str]:
    return sweeps.remind_patient(job_runtime().uow(), utcnow(), uuid.UUID(patient_id))


@detachable
def deliver_webhook(delivery_id: str) -> bool | None:
    """One attempt; on failure the next is scheduled (and the retry sweep is the backstop)."""
    rt = job_runtime()
    result = webhooks.attempt(rt.uow, rt.settings, uuid.UUID(delivery_id), utcnow)
    if result is None:
        return None
    if result.next_attempt_at is not None:
        try:
            dispatcher_for(rt).enqueue_at(
                result.next_attempt_at,
                deliver_webhook,
                delivery_id,
                job_id=webhook_job_id(delivery_id, result.attempt + 1),
            )
        except Exception as exc:
            log.warning(
                "could not schedule a webhook retry", extra={"delivery_id": delivery_id, "error": type(exc).__name__}
            )
    return result.delivered


class FollowUp(NamedTuple):
    """A per-entity job an event schedules."""

    when: datetime
    job: Job
    entity_id: str
    job_id: str


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def follow_ups(event: HandledEvent) -> list[FollowUp]:
    """The per-entity jobs an event schedules, each with a deterministic job id."""
    data = event.payload
    valid_until = _when(data.get("valid_until"))
    if event.type == "authorization.issued" and data.get("authorization_id") and valid_until:
        auth_id = data["authorization_id"]
        return [
            FollowUp(valid_until, expire_authorization, auth_id, f"authorization-expiry-{auth_id}"),
            FollowUp(
                valid_until - sweeps.AUTHORIZATION_EXPIRY_AHEAD,
                remind_authorization_expiring,
                auth_id,
                f"authorization-expiring-{auth_id}",
            ),
        ]
    if event.type == "dispense.approved" and data.get("dispense_id") and valid_until:
        dispense_id = data["dispense_id"]
        return [FollowUp(valid_until, lapse_confirmation, dispense_id, f"dispense-lapse-{dispense_id}")]
    if event.type in events.PATIENT_EVENTS and data.get("patient_id"):
        patient_id = data["patient_id"]
        dues: tuple[tuple[datetime | None, timedelta, str], ...] = (
            (event.next_test_due_at, sweeps.TEST_DUE_AHEAD, "test"),
            (event.next_survey_due_at, sweeps.SURVEY_DUE_AHEAD, "survey"),
        )
        return [
            FollowUp(due - ahead, remind_patient, patient_id, f"patient-{kind}-due-{patient_id}-{int(due.timestamp())}")
            for due, ahead, kind in dues
            if due is not None
        ]
    return []


def handle_event(event_id: str) -> bool:
    """Fan the event out to webhook deliveries and schedule its follow-ups, once."""
    rt = job_runtime()
    handled = events.handle(rt.uow(), uuid.UUID(event_id), utcnow())
    if handled is None:
        return False
    dispatcher = dispatcher_for(rt)
    try:
        for delivery_id in handled.deliveries:
            dispatcher.enqueue(deliver_webhook, str(delivery_id), job_id=webhook_job_id(delivery_id, 1))
        for follow_up in follow_ups(handled):
            dispatcher.enqueue_at(follow_up.when, follow_up.job, follow_up.entity_id, job_id=follow_up.job_id)
    except Exception as exc:  # the rows are in the database; the sweeps will do it
        log.warning("could not enqueue follow-ups", extra={"event_id": event_id, "error": type(exc).__name__})
    return True
