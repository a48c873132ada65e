"""The two shapes of participant and patient use cases: register a new row, and run
one life-cycle command on an existing row. Each writes the row, its audit entry and
its event in one unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlmodel import SQLModel

from rems_service.db.repository import Duplicate
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor
from workflows.audit import OUTCOME_COMPLETED
from workflows.errors import DomainError
from workflows.lifecycle import Lifecycle, StateChange

from .errors import Conflict, NotFound, from_domain_error

Row = TypeVar("Row", bound=SQLModel)
Machine = TypeVar("Machine", bound=Lifecycle)


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
    violation becomes ``duplicate`` (409) and nothing is written.
    """
    with uow:
        try:
            uow.repo.add(row)
        except Duplicate:
            raise duplicate from None
        status = row.status.value  # type: ignore[attr-defined]
        created_at = row.created_at  # type: ignore[attr-defined]
        details = {"to_state": status}
        uow.repo.append_audit(
            actor=actor,
            action=event,
            outcome=OUTCOME_COMPLETED,
            effective_at=created_at,
            subject=subject(row),
            inputs=subject(row),
            details=details,
        )
        uow.repo.record_event(event, created_at, {**subject(row), **details})
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
        row = uow.repo.get(row_type, row_id, lock=True)
        if row is None or not visible(row):
            raise NotFound(not_found)
        machine = build(row)
        try:
            change = command(machine)
        except DomainError as exc:
            raise from_domain_error(exc) from None
        for name, value in machine.persisted().items():
            setattr(row, name, value)
        uow.repo.record_change(actor, row, change, subject(row), program_version)
        uow.commit()
        return row
