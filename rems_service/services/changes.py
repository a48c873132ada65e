"""Persisting a state change: the row, its audit entry and its event, together."""

from __future__ import annotations

from typing import Any, Mapping

from sqlmodel import Session

from workflows.audit import OUTCOME_COMPLETED
from workflows.errors import GuardFailed, IllegalTransition
from workflows.lifecycle import StateChange

from . import audit, events
from .actor import Actor
from .errors import Conflict, Invalid


def record_change(
    session: Session,
    actor: Actor,
    row: Any,
    change: StateChange,
    subject: Mapping[str, Any],
    program_version: str | None = None,
) -> None:
    """Store ``change`` on ``row`` and write its audit entry and outbox event.

    The audit entry names the actor, the effective time, the prior and new
    state and the change's details; the caller's unit of work commits all
    three or none.
    """
    row.status = type(row.status)(change.to_state)  # keep the column's Enum type
    row.status_changed_at = change.at
    row.status_reason = change.details.get("reason")
    session.add(row)
    details = {"from_state": change.from_state, "to_state": change.to_state, **change.details}
    audit.append(
        session,
        actor=actor,
        action=change.event,
        outcome=OUTCOME_COMPLETED,
        effective_at=change.at,
        subject=subject,
        program_version=program_version,
        inputs={"subject": dict(subject), "trigger": change.trigger, "from_state": change.from_state},
        details=details,
    )
    events.record(session, change.event, change.at, {**subject, **details, "actor": actor.as_audit()})


def translate_domain_error(exc: Exception) -> Exception:
    """Map a domain refusal onto the service error the web layer understands."""
    if isinstance(exc, IllegalTransition):
        return Conflict(
            f"Cannot {exc.trigger} this {exc.subject}: its current status is '{exc.current_state}'.",
            {"status": [f"Current status is '{exc.current_state}'."]},
        )
    if isinstance(exc, GuardFailed):
        return Invalid(str(exc), exc.field_errors)
    return exc
