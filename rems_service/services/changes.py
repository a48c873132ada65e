"""Persisting a state change: the row, its audit entry and its event, together."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from rems_service.db.uow import UnitOfWork
from workflows.audit import OUTCOME_COMPLETED
from workflows.errors import DomainError, GuardFailed, IllegalTransition, NoProgramInForce
from workflows.lifecycle import Lifecycle, StateChange
from workflows.program import Program, ProgramVersion

from . import audit, events
from .actor import Actor
from .errors import Conflict, Invalid, NotFound, Unavailable

Row = TypeVar("Row", bound=SQLModel)
Machine = TypeVar("Machine", bound=Lifecycle)


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


def version_at(program: Program, now: datetime) -> ProgramVersion:
    """The program version in force at ``now``; ``Unavailable`` (503) before the first.

    Nothing is decided or changed without the rules that govern it.
    """
    try:
        return program.in_force(now)
    except NoProgramInForce as exc:
        raise Unavailable(str(exc)) from None


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


def register(
    uow: UnitOfWork,
    actor: Actor,
    row: Row,
    event: str,
    subject: Callable[[Row], Mapping[str, Any]],
    duplicate: Conflict,
) -> Row:
    """Insert a newly registered participant with its audit entry and event.

    The unique constraint is the backstop for concurrent duplicates: its
    violation, raised by the flush, becomes ``duplicate`` (409) and nothing
    is written.
    """
    with uow:
        session = uow.session
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise duplicate from None
        details = {"to_state": row.status.value}
        audit.append(
            session,
            actor=actor,
            action=event,
            outcome=OUTCOME_COMPLETED,
            effective_at=row.created_at,
            subject=subject(row),
            inputs=subject(row),
            details=details,
        )
        events.record(session, event, row.created_at, {**subject(row), **details})
        uow.commit()
        return row


def transition(
    uow: UnitOfWork,
    actor: Actor,
    row_type: type[Row],
    row_id: uuid.UUID,
    *,
    visible: Callable[[Row], bool],
    not_found: str,
    build: Callable[[Row], Machine],
    command: Callable[[Machine], StateChange],
    subject: Callable[[Row], Mapping[str, Any]],
    program_version: str | None = None,
) -> Row:
    """Load ``row_id`` locked, run ``command`` on its machine, persist the change.

    Raises ``NotFound`` when the row is missing or ``visible(row)`` is false
    for the actor, ``Conflict`` for an illegal transition and ``Invalid`` for a
    refused guard; in each case nothing is written.
    """
    with uow:
        session = uow.session
        row = session.get(row_type, row_id, with_for_update=True)
        if row is None or not visible(row):
            raise NotFound(not_found)
        machine = build(row)
        try:
            change = command(machine)
        except DomainError as exc:
            raise translate_domain_error(exc) from None
        for name, value in machine.persisted().items():
            setattr(row, name, value)
        record_change(session, actor, row, change, subject(row), program_version)
        uow.commit()
        return row
