"""Pharmacy registration and certification (R-PHA-1, R-PHA-2)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rems_service.db.models import Pharmacy
from rems_service.db.repository import pharmacy_subject
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.identifiers import ncpdp_problem
from workflows.lifecycle import StateChange
from workflows.participants import PharmacyCertification, PharmacyStatus, effective_pharmacy_status
from workflows.program import Program

from . import state_changes
from .errors import Conflict, Invalid, NotFound
from .versions import version_at

NOT_FOUND = "Pharmacy not found."


def _visible(actor: Actor, pharmacy_id: uuid.UUID) -> bool:
    """Admins see every pharmacy; a pharmacist sees only its own."""
    return actor.is_admin or (actor.role == UserRole.PHARMACIST.value and actor.pharmacy_id == pharmacy_id)


def effective_status(row: Pharmacy, now: datetime) -> str:
    """The status at ``now``, computed from ``certified_until`` (R-PHA-2)."""
    return effective_pharmacy_status(row.status.value, row.certified_until, now)


def register(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    *,
    ncpdp_id: str,
    name: str,
    representative_name: str,
    representative_email: str,
) -> Pharmacy:
    """Register a pending pharmacy. Raises ``Invalid`` (bad NCPDP id) or ``Conflict`` (taken)."""
    problem = ncpdp_problem(ncpdp_id)
    if problem:
        raise Invalid(problem, {"ncpdp_id": [problem]})
    duplicate = Conflict("A pharmacy with this NCPDP ID is already registered.", {"ncpdp_id": ["Already registered."]})
    with uow:
        if uow.repo.exists(Pharmacy, Pharmacy.ncpdp_id == ncpdp_id):
            raise duplicate
    row = Pharmacy(
        ncpdp_id=ncpdp_id,
        name=name,
        representative_name=representative_name,
        representative_email=representative_email,
        status=PharmacyStatus.PENDING,
        status_changed_at=now,
        created_at=now,
    )
    return state_changes.register(uow, actor, row, "pharmacy.registered", pharmacy_subject, duplicate)


def get(uow: UnitOfWork, actor: Actor, pharmacy_id: uuid.UUID) -> Pharmacy:
    """Return the pharmacy if the actor may see it; else ``NotFound``."""
    with uow:
        row = uow.repo.get(Pharmacy, pharmacy_id) if _visible(actor, pharmacy_id) else None
        if row is None:
            raise NotFound(NOT_FOUND)
        return row


def _transition(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    pharmacy_id: uuid.UUID,
    command: Callable[[PharmacyCertification], StateChange],
    program_version: str | None = None,
) -> Pharmacy:
    return state_changes.transition(
        uow,
        actor,
        Pharmacy,
        pharmacy_id,
        visible=lambda row: _visible(actor, row.id),
        not_found=NOT_FOUND,
        # Built in its effective status: a lapsed certification is 'expired' here.
        build=lambda row: PharmacyCertification(
            row.status.value, now, certified_at=row.certified_at, certified_until=row.certified_until
        ),
        command=command,
        subject=pharmacy_subject,
        program_version=program_version,
    )


def certify(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, pharmacy_id: uuid.UUID, attestations: dict[str, Any]
) -> Pharmacy:
    """R-PHA-1/2: certify (or renew) for the program's ``pharmacy_certification_days``.

    Raises ``Unavailable`` when no program version is in force at ``now``.
    """
    version = version_at(program, now)
    return _transition(uow, actor, now, pharmacy_id, lambda m: m.certify(attestations, version, now), version.version)


def suspend(uow: UnitOfWork, actor: Actor, now: datetime, pharmacy_id: uuid.UUID, reason: str | None) -> Pharmacy:
    return _transition(uow, actor, now, pharmacy_id, lambda m: m.suspend(reason, now))


def reinstate(uow: UnitOfWork, actor: Actor, now: datetime, pharmacy_id: uuid.UUID) -> Pharmacy:
    return _transition(uow, actor, now, pharmacy_id, lambda m: m.reinstate(now))


def decertify(uow: UnitOfWork, actor: Actor, now: datetime, pharmacy_id: uuid.UUID, reason: str | None) -> Pharmacy:
    return _transition(uow, actor, now, pharmacy_id, lambda m: m.decertify(reason, now))
