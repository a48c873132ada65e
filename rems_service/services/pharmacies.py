"""Pharmacy registration and certification (R-PHA-1, R-PHA-2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from rems_service.db.models import Pharmacy, UserRole
from rems_service.db.uow import UnitOfWork
from workflows.audit import OUTCOME_COMPLETED
from workflows.errors import DomainError
from workflows.identifiers import ncpdp_problem
from workflows.lifecycle import StateChange
from workflows.participants import PharmacyCertification, PharmacyStatus, effective_pharmacy_status
from workflows.program import Program

from . import audit, events
from .actor import Actor
from .changes import record_change, translate_domain_error
from .errors import Conflict, Invalid, NotFound, Unavailable


def _subject(row: Pharmacy) -> dict[str, Any]:
    return {"pharmacy_id": row.id, "ncpdp_id": row.ncpdp_id}


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
        session = uow.session
        if session.exec(select(Pharmacy.id).where(Pharmacy.ncpdp_id == ncpdp_id)).first() is not None:
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
        session.add(row)
        session.flush()
        audit.append(
            session,
            actor=actor,
            action="pharmacy.registered",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=_subject(row),
            inputs=_subject(row),
            details={"to_state": PharmacyStatus.PENDING.value},
        )
        events.record(session, "pharmacy.registered", now, _subject(row))
        try:
            uow.commit()
        except IntegrityError:
            raise duplicate from None
        return row


def get(uow: UnitOfWork, actor: Actor, pharmacy_id: uuid.UUID) -> Pharmacy:
    """Return the pharmacy if the actor may see it; else ``NotFound``."""
    with uow:
        row = uow.session.get(Pharmacy, pharmacy_id) if _visible(actor, pharmacy_id) else None
        if row is None:
            raise NotFound("Pharmacy not found.")
        return row


def _transition(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    pharmacy_id: uuid.UUID,
    command: Callable[[PharmacyCertification], StateChange],
    program_version: str | None = None,
) -> Pharmacy:
    with uow:
        session = uow.session
        row = session.get(Pharmacy, pharmacy_id, with_for_update=True) if _visible(actor, pharmacy_id) else None
        if row is None:
            raise NotFound("Pharmacy not found.")
        machine = PharmacyCertification(
            row.status.value, now, certified_at=row.certified_at, certified_until=row.certified_until
        )
        try:
            change = command(machine)
        except DomainError as exc:
            raise translate_domain_error(exc) from None
        row.certified_at = machine.certified_at
        row.certified_until = machine.certified_until
        record_change(session, actor, row, change, _subject(row), program_version)
        uow.commit()
        return row


def certify(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, pharmacy_id: uuid.UUID, attestations: dict[str, Any]
) -> Pharmacy:
    """R-PHA-1/2: certify (or renew) for the program's ``pharmacy_certification_days``."""
    try:
        version = program.in_force(now)
    except DomainError as exc:
        raise Unavailable(str(exc)) from None
    return _transition(
        uow, actor, now, pharmacy_id, lambda m: m.certify(attestations, version, now), version.version
    )


def suspend(uow: UnitOfWork, actor: Actor, now: datetime, pharmacy_id: uuid.UUID, reason: str | None) -> Pharmacy:
    return _transition(uow, actor, now, pharmacy_id, lambda m: m.suspend(reason, now))


def reinstate(uow: UnitOfWork, actor: Actor, now: datetime, pharmacy_id: uuid.UUID) -> Pharmacy:
    return _transition(uow, actor, now, pharmacy_id, lambda m: m.reinstate(now))


def decertify(uow: UnitOfWork, actor: Actor, now: datetime, pharmacy_id: uuid.UUID, reason: str | None) -> Pharmacy:
    return _transition(uow, actor, now, pharmacy_id, lambda m: m.decertify(reason, now))
