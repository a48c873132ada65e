"""Prescriber registration and certification (R-PRES-1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rems_service.db.models import Prescriber
from rems_service.db.repository import prescriber_subject
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.identifiers import npi_problem
from workflows.lifecycle import StateChange
from workflows.participants import PrescriberCertification, PrescriberStatus

from . import state_changes
from .errors import Conflict, Invalid, NotFound

NOT_FOUND = "Prescriber not found."


def _visible(actor: Actor, prescriber_id: uuid.UUID) -> bool:
    """Admins see every prescriber; a prescriber user sees only its own."""
    return actor.is_admin or (actor.role == UserRole.PRESCRIBER.value and actor.prescriber_id == prescriber_id)


def register(
    uow: UnitOfWork, actor: Actor, now: datetime, *, npi: str, first_name: str, last_name: str, email: str | None = None
) -> Prescriber:
    """Register a pending prescriber. Raises ``Invalid`` (bad NPI) or ``Conflict`` (NPI taken)."""
    problem = npi_problem(npi)
    if problem:
        raise Invalid(problem, {"npi": [problem]})
    duplicate = Conflict("A prescriber with this NPI is already registered.", {"npi": ["Already registered."]})
    with uow:
        if uow.repo.exists(Prescriber, Prescriber.npi == npi):
            raise duplicate
    row = Prescriber(
        npi=npi,
        first_name=first_name,
        last_name=last_name,
        email=email,
        status=PrescriberStatus.PENDING,
        status_changed_at=now,
        created_at=now,
    )
    return state_changes.register(uow, actor, row, "prescriber.registered", prescriber_subject, duplicate)


def get(uow: UnitOfWork, actor: Actor, prescriber_id: uuid.UUID) -> Prescriber:
    """Return the prescriber if the actor may see it; else ``NotFound``."""
    with uow:
        row = uow.repo.get(Prescriber, prescriber_id) if _visible(actor, prescriber_id) else None
        if row is None:
            raise NotFound(NOT_FOUND)
        return row


def _transition(
    uow: UnitOfWork, actor: Actor, prescriber_id: uuid.UUID, command: Callable[[PrescriberCertification], StateChange]
) -> Prescriber:
    return state_changes.transition(
        uow,
        actor,
        Prescriber,
        prescriber_id,
        visible=lambda row: _visible(actor, row.id),
        not_found=NOT_FOUND,
        build=lambda row: PrescriberCertification(row.status.value, certified_at=row.certified_at),
        command=command,
        subject=prescriber_subject,
    )


def certify(
    uow: UnitOfWork, actor: Actor, now: datetime, prescriber_id: uuid.UUID, attestations: dict[str, Any]
) -> Prescriber:
    """R-PRES-1: certify a pending prescriber whose four attestations are all true."""
    return _transition(uow, actor, prescriber_id, lambda m: m.certify(attestations, now))


def suspend(uow: UnitOfWork, actor: Actor, now: datetime, prescriber_id: uuid.UUID, reason: str) -> Prescriber:
    return _transition(uow, actor, prescriber_id, lambda m: m.suspend(reason, now))


def reinstate(uow: UnitOfWork, actor: Actor, now: datetime, prescriber_id: uuid.UUID) -> Prescriber:
    return _transition(uow, actor, prescriber_id, lambda m: m.reinstate(now))


def decertify(uow: UnitOfWork, actor: Actor, now: datetime, prescriber_id: uuid.UUID, reason: str) -> Prescriber:
    return _transition(uow, actor, prescriber_id, lambda m: m.decertify(reason, now))
