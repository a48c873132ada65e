"""Prescription authorizations: the prescriber's decision (R-AUTH-1 to R-AUTH-4)
and what happens to an authorization afterwards (void, R-PREG-4).

Lock order, shared by every path that changes authorizations or dispenses:
patient, then authorization, then dispense. The patient lock serializes
everything decided for one patient (a positive test cannot slip between a
decision's read and its write); the authorization lock is R-DISP-5's row
lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from rems_service.db.models import Authorization, DecisionRecord, Dispense, Patient, Prescriber, UserRole
from rems_service.db.uow import UnitOfWork
from workflows.authorizations import (
    NUMBER_PREFIX,
    OPEN_STATUSES,
    AuthorizationContext,
    AuthorizationLifecycle,
    AuthorizationRequest,
    AuthorizationStatus,
    PrescriberSurvey,
    decide_authorization,
    effective_status,
)
from workflows.dispenses import DispenseLifecycle, DispenseStatus, effective_dispense_status
from workflows.errors import DomainError
from workflows.identifiers import new_reference_number, normalize_reference_number
from workflows.participants import PrescriberStatus
from workflows.program import Program, ProgramVersion

from . import changes, decisions, idempotency, patients
from .actor import Actor
from .errors import NotFound

NOT_FOUND = "Authorization not found."


@dataclass(frozen=True)
class DecisionResult:
    """What a decision endpoint answers with."""

    record: DecisionRecord
    authorization: Authorization | None = None
    dispense: Dispense | None = None


def subject(row: Authorization) -> dict[str, Any]:
    return {
        "authorization_id": row.id,
        "authorization_number": row.number,
        "patient_id": row.patient_id,
        "rems_patient_id": row.rems_patient_id,
        "prescriber_id": row.prescriber_id,
    }


def dispense_subject(row: Dispense) -> dict[str, Any]:
    return {
        "dispense_id": row.id,
        "confirmation_number": row.confirmation_number,
        "authorization_id": row.authorization_id,
        "patient_id": row.patient_id,
        "rems_patient_id": row.rems_patient_id,
        "pharmacy_id": row.pharmacy_id,
    }


def lock_patient(session: Session, patient_id: uuid.UUID) -> Patient:
    return session.get(Patient, patient_id, with_for_update=True, populate_existing=True)


def lock_authorization(
    session: Session, authorization_id: uuid.UUID, patient_id: uuid.UUID
) -> tuple[Patient, Authorization]:
    """Lock the patient, then the authorization (the module's lock order), and return
    both re-read under their locks."""
    patient = lock_patient(session, patient_id)
    return patient, session.get(Authorization, authorization_id, with_for_update=True, populate_existing=True)


def lock_by_number(session: Session, number: str) -> tuple[Patient | None, Authorization | None]:
    """Lock the patient of the authorization numbered ``number``, then the
    authorization (the module's lock order), in two statements; ``(None, None)``
    when no authorization has that number. An authorization's patient never
    changes, so the subquery's unlocked read of it is safe."""
    number = normalize_reference_number(number)
    patient = session.exec(
        select(Patient)
        .where(Patient.id == select(Authorization.patient_id).where(Authorization.number == number).scalar_subquery())
        .with_for_update()
    ).first()
    if patient is None:
        return None, None
    auth = session.exec(select(Authorization).where(Authorization.number == number).with_for_update()).one()
    return patient, auth


def find(session: Session, number: str) -> Authorization | None:
    return session.exec(select(Authorization).where(Authorization.number == normalize_reference_number(number))).first()


def holding_dispense(session: Session, authorization_id: uuid.UUID, lock: bool = False) -> Dispense | None:
    """The authorization's dispense in stored status ``confirmed`` (at most one: R-DISP-5's index)."""
    query = select(Dispense).where(
        Dispense.authorization_id == authorization_id, Dispense.status == DispenseStatus.CONFIRMED
    )
    if lock:
        query = query.with_for_update()
    return session.exec(query).first()


def effective(row: Authorization, holding: Dispense | None, now: datetime) -> AuthorizationStatus:
    return effective_status(row.status, row.expires_at, holding.confirmation_expires_at if holding else None, now)


def settle_holding(
    session: Session, actor: Actor, row: Authorization, now: datetime, version: ProgramVersion
) -> Dispense | None:
    """Read ``row``'s confirmed dispense (locked) and settle it (``settle``)."""
    return settle(session, actor, holding_dispense(session, row.id, lock=True), now, version)


def settle(
    session: Session, actor: Actor, holding: Dispense | None, now: datetime, version: ProgramVersion
) -> Dispense | None:
    """Mirror a confirmation that lapsed by time into its status (so it no longer
    holds its authorization) and return it if it is still live."""
    if holding is None:
        return None
    if effective_dispense_status(holding.status, holding.confirmation_expires_at, now) is DispenseStatus.LAPSED:
        machine = DispenseLifecycle(DispenseStatus.CONFIRMED.value)
        changes.record_change(
            session,
            actor,
            holding,
            machine.lapse(now, {"rule": "R-DISP-2"}),
            dispense_subject(holding),
            version.version,
        )
        return None
    return holding


def request(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    *,
    patient_id: uuid.UUID,
    days_supply: int,
    quantity: int,
    strength_mg: float,
    prescriber_survey: dict[str, Any],
    render: Callable[[DecisionResult], str],
    claim: idempotency.Claim | None = None,
) -> str:
    """Decide a prescription authorization (R-AUTH-1) and record it; return the rendered response.

    Raises ``NotFound`` for an unknown patient. A patient of another
    prescriber is a recorded denial (PATIENT_PRESCRIBER_MISMATCH).
    """
    version = changes.version_at(program, now)
    with uow:
        session = uow.session
        patient = lock_patient(session, patient_id)
        if patient is None:
            raise NotFound(patients.NOT_FOUND)
        prescriber = session.get(Prescriber, actor.prescriber_id)
        ctx = AuthorizationContext(
            prescriber_id=str(actor.prescriber_id),
            prescriber_status=prescriber.status if prescriber else PrescriberStatus.DECERTIFIED,
            patient=decisions.patient_facts(session, patient),
            last_survey_at=patients.last_survey_at(session, patient.id),
            request=AuthorizationRequest(
                days_supply=days_supply,
                quantity=quantity,
                strength_mg=float(strength_mg),
                prescriber_survey=PrescriberSurvey(
                    counseled_on_risks=prescriber_survey.get("counseled_on_risks"),
                    contraception_confirmed=prescriber_survey.get("contraception_confirmed"),
                ),
            ),
        )
        decision = decide_authorization(ctx, version, now)
        decision_id = uuid.uuid4()
        subject_ids = {
            "patient_id": patient.id,
            "rems_patient_id": patient.rems_patient_id,
            "prescriber_id": actor.prescriber_id,
        }
        details: dict[str, Any] = {"days_supply": days_supply}
        row = None
        if decision.approved:
            row = Authorization(
                number=_unused_number(session),
                patient_id=patient.id,
                prescriber_id=patient.prescriber_id,
                rems_patient_id=patient.rems_patient_id,
                risk_category=patient.risk_category,
                days_supply=days_supply,
                quantity=quantity,
                strength_mg=float(strength_mg),
                status=AuthorizationStatus.ISSUED,
                issued_at=now,
                expires_at=decision.valid_until,
                status_changed_at=now,
                decision_id=decision_id,
            )
            details.update(
                authorization_id=row.id, authorization_number=row.number, risk_category=patient.risk_category.value
            )
        record = decisions.record(
            session,
            actor=actor,
            kind="authorization",
            decision_id=decision_id,
            snapshot=ctx,
            decision=decision,
            program_version=version.version,
            now=now,
            subject=subject_ids,
            details=details,
            event="authorization.issued" if decision.approved else "authorization.denied",
        )
        if row is not None:
            session.add(row)
            session.flush()
        body = render(DecisionResult(record, row))
        if claim is not None:
            idempotency.complete(session, claim, 201, body)
        uow.commit()
        return body


def _unused_number(session: Session) -> str:
    """A fresh authorization number; the unique constraint remains the backstop."""
    while True:
        number = new_reference_number(NUMBER_PREFIX)
        if session.exec(select(Authorization.id).where(Authorization.number == number)).first() is None:
            return number


@dataclass(frozen=True)
class AuthorizationView:
    authorization: Authorization
    status: AuthorizationStatus


def _visible(actor: Actor, row: Authorization | None) -> bool:
    """Its prescriber and any pharmacist (who must check it before dispensing); admins."""
    if row is None:
        return False
    if actor.is_admin or actor.role == UserRole.PHARMACIST.value:
        return True
    return actor.role == UserRole.PRESCRIBER.value and actor.prescriber_id == row.prescriber_id


def get(uow: UnitOfWork, actor: Actor, now: datetime, number: str) -> AuthorizationView:
    """The authorization with its status at ``now``."""
    with uow:
        row = find(uow.session, number)
        if not _visible(actor, row):
            raise NotFound(NOT_FOUND)
        holding = holding_dispense(uow.session, row.id)
        return AuthorizationView(row, effective(row, holding, now))


def void(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, number: str, reason: str | None
) -> AuthorizationView:
    """The prescriber voids an open authorization; a live confirmation on it is voided too.

    Raises ``NotFound`` (not the caller's) or ``Conflict`` (already used,
    expired or voided).
    """
    version = changes.version_at(program, now)
    with uow:
        session = uow.session
        found = find(session, number)
        if found is None or not (
            actor.role == UserRole.PRESCRIBER.value and found.prescriber_id == actor.prescriber_id
        ):
            raise NotFound(NOT_FOUND)
        _, row = lock_authorization(session, found.id, found.patient_id)
        try:
            void_locked(session, actor, now, version, row, reason or "voided by the prescriber", {})
        except DomainError as exc:
            raise changes.translate_domain_error(exc) from None
        uow.commit()
        return AuthorizationView(row, row.status)


def void_locked(
    session: Session,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    row: Authorization,
    reason: str,
    details: dict[str, Any],
) -> None:
    """Void ``row`` (locked by the caller) and its live confirmation, if any."""
    holding = settle_holding(session, actor, row, now, version)
    machine = AuthorizationLifecycle(effective(row, holding, now).value)
    change = machine.void(reason, now, details)
    if holding is not None:
        dispense_change = DispenseLifecycle(DispenseStatus.CONFIRMED.value).void(
            reason, now, {"authorization_number": row.number, **details}
        )
        changes.record_change(session, actor, holding, dispense_change, dispense_subject(holding), version.version)
    changes.record_change(session, actor, row, change, subject(row), version.version)


def void_open_for_patient(
    session: Session,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    patient: Patient,
    reason: str,
    details: dict[str, Any],
) -> int:
    """R-PREG-4: void every open authorization of ``patient`` (locked by the caller)
    and every confirmation not yet handed over. Returns how many were voided."""
    rows = session.exec(
        select(Authorization)
        .where(Authorization.patient_id == patient.id, Authorization.status.in_([s.value for s in OPEN_STATUSES]))
        .order_by(Authorization.issued_at)
        .with_for_update()
    ).all()
    voided = 0
    for row in rows:
        if effective(row, holding_dispense(session, row.id), now) in OPEN_STATUSES:
            void_locked(session, actor, now, version, row, reason, details)
            voided += 1
    return voided
