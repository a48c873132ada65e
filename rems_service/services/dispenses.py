"""Dispense authorizations (R-DISP-1 to R-DISP-5) and recorded dispenses.

R-DISP-5 holds twice over: the authorization row is locked (``SELECT … FOR
UPDATE`` on PostgreSQL; SQLite serializes writers) while the decision reads
and writes, and a partial unique index lets one authorization hold only one
live or completed confirmation on every backend. A request that still loses
a race to the index is decided again and denied AUTHORIZATION_ALREADY_USED.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from rems_service.db.models import Authorization, Dispense, Pharmacy, User, UserRole
from rems_service.db.uow import UnitOfWork
from workflows.authorizations import AuthorizationLifecycle, AuthorizationStatus
from workflows.dispenses import (
    NUMBER_PREFIX,
    AuthorizationFacts,
    Counseling,
    DispenseContext,
    DispenseLifecycle,
    DispenseRequest,
    DispenseStatus,
    PharmacistFacts,
    PharmacyFacts,
    decide_dispense,
    effective_dispense_status,
)
from workflows.errors import DomainError
from workflows.identifiers import new_reference_number, normalize_reference_number
from workflows.participants import PharmacyStatus
from workflows.patients import PatientLifecycle, PatientStatus
from workflows.program import Program, ProgramVersion

from . import changes, decisions, idempotency, patients
from .actor import Actor
from .authorizations import (
    DecisionResult,
    dispense_subject,
    effective,
    holding_dispense,
    lock_authorization,
    lock_by_number,
    settle,
)
from .authorizations import subject as authorization_subject
from .errors import Conflict, NotFound, Unavailable

NOT_FOUND = "Dispense not found."
subject = dispense_subject


def request(
    uow_factory: Callable[[], UnitOfWork],
    actor: Actor,
    now: datetime,
    program: Program,
    *,
    authorization_number: str,
    rems_patient_id: str,
    days_supply: int,
    quantity: int,
    counseling: dict[str, Any],
    render: Callable[[DecisionResult], str],
    claim: idempotency.Claim | None = None,
) -> str:
    """Decide a dispense authorization (R-DISP-1), record it, return the rendered response.

    If the decision loses a race to R-DISP-5's unique index, it is decided
    again from fresh reads (and so denied AUTHORIZATION_ALREADY_USED); a
    second loss is a 503, never an approval.
    """
    version = changes.version_at(program, now)
    dispense_request = DispenseRequest(
        authorization_number=normalize_reference_number(authorization_number),
        rems_patient_id=rems_patient_id.strip().upper(),
        days_supply=days_supply,
        quantity=quantity,
        counseling=Counseling(
            medication_guide_provided=counseling["medication_guide_provided"],
            checklist_completed=counseling["checklist_completed"],
        ),
    )
    for _attempt in range(2):
        try:
            return _decide(uow_factory(), actor, now, version, dispense_request, render, claim)
        except IntegrityError:
            continue  # the unit of work rolled back; decide again on what the winner wrote
    raise Unavailable(
        "The dispense could not be decided safely under concurrent requests; nothing was recorded. Retry."
    )


def _decide(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    dispense_request: DispenseRequest,
    render: Callable[[DecisionResult], str],
    claim: idempotency.Claim | None,
) -> str:
    with uow:
        session = uow.session
        patient, auth = lock_by_number(session, dispense_request.authorization_number)
        holding = holding_dispense(session, auth.id) if auth is not None else None
        matches = auth is not None and auth.rems_patient_id == dispense_request.rems_patient_id
        pharmacy, pharmacist = _participant_facts(session, actor)
        ctx = DispenseContext(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            request=dispense_request,
            authorization=None
            if auth is None
            else AuthorizationFacts(
                number=auth.number,
                status=auth.status,
                issued_at=auth.issued_at,
                expires_at=auth.expires_at,
                rems_patient_id=auth.rems_patient_id,
                days_supply=auth.days_supply,
                confirmation_expires_at=holding.confirmation_expires_at if holding else None,
            ),
            patient=decisions.patient_facts(session, patient) if matches else None,
            prior_dispense=decisions.prior_dispense(session, patient.id) if matches else None,
        )
        decision = decide_dispense(ctx, version, now)
        decision_id = uuid.uuid4()
        subject_ids: dict[str, Any] = {
            "pharmacy_id": actor.pharmacy_id,
            "authorization_number": dispense_request.authorization_number,
        }
        if matches:
            subject_ids.update(
                patient_id=patient.id, rems_patient_id=patient.rems_patient_id, prescriber_id=auth.prescriber_id
            )
        details: dict[str, Any] = {"days_supply": dispense_request.days_supply}
        row = None
        if decision.approved:
            settle(session, actor, holding, now, version)  # read under the authorization's lock above
            # The number's uniqueness is the constraint's: a 75-bit collision would be an
            # IntegrityError, and the decision is then simply made again.
            number = new_reference_number(NUMBER_PREFIX)
            change = AuthorizationLifecycle(effective(auth, None, now).value).confirm(number, now)
            # Written before the audit entry: the chain head's lock is then held for fewer statements.
            auth.status, auth.status_changed_at, auth.status_reason = AuthorizationStatus(change.to_state), now, None
            session.flush()
            row = Dispense(
                confirmation_number=number,
                authorization_id=auth.id,
                pharmacy_id=actor.pharmacy_id,
                pharmacist_user_id=actor.user_id,
                patient_id=patient.id,
                rems_patient_id=patient.rems_patient_id,
                days_supply=dispense_request.days_supply,
                quantity=dispense_request.quantity,
                status=DispenseStatus.CONFIRMED,
                confirmed_at=now,
                confirmation_expires_at=decision.valid_until,
                status_changed_at=now,
                decision_id=decision_id,
            )
            # The decision's own audit entry records the authorization's change of state.
            details.update(
                dispense_id=row.id,
                confirmation_number=row.confirmation_number,
                authorization_id=auth.id,
                authorization_from_state=change.from_state,
                authorization_to_state=change.to_state,
            )
        record = decisions.record(
            session,
            actor=actor,
            kind="dispense",
            decision_id=decision_id,
            snapshot=ctx,
            decision=decision,
            program_version=version.version,
            now=now,
            subject=subject_ids,
            details=details,
            event="dispense.approved" if decision.approved else "dispense.denied",
        )
        if row is not None:
            session.add(row)
            session.flush()  # R-DISP-5's index: IntegrityError here if another confirmation holds it
        body = render(DecisionResult(record, auth if row is not None else None, row))
        if claim is not None:
            idempotency.complete(session, claim, 201, body)
        uow.commit()
        return body


def _participant_facts(session: Session, actor: Actor) -> tuple[PharmacyFacts, PharmacistFacts]:
    """The pharmacy's certification and the pharmacist's training, read fresh in one
    statement (training recorded after the caller authenticated still counts, and
    vice versa); an unknown pharmacy reads as decertified."""
    status, certified_until, training = session.execute(
        select(
            select(Pharmacy.status).where(Pharmacy.id == actor.pharmacy_id).scalar_subquery(),
            select(Pharmacy.certified_until).where(Pharmacy.id == actor.pharmacy_id).scalar_subquery(),
            select(User.training_completed_at).where(User.id == actor.user_id).scalar_subquery(),
        )
    ).one()
    return (
        PharmacyFacts(
            pharmacy_id=str(actor.pharmacy_id),
            status=status or PharmacyStatus.DECERTIFIED,
            certified_until=certified_until,
        ),
        PharmacistFacts(user_id=str(actor.user_id), training_completed_at=training),
    )


def _find(session: Session, actor: Actor, number: str) -> Dispense:
    row = session.exec(
        select(Dispense).where(Dispense.confirmation_number == normalize_reference_number(number))
    ).first()
    if row is None or not (
        actor.is_admin or (actor.role == UserRole.PHARMACIST.value and actor.pharmacy_id == row.pharmacy_id)
    ):
        raise NotFound(NOT_FOUND)
    return row


@dataclass(frozen=True)
class DispenseView:
    dispense: Dispense
    status: DispenseStatus
    authorization_number: str


def get(uow: UnitOfWork, actor: Actor, now: datetime, number: str) -> DispenseView:
    """The dispense with its status at ``now`` (its pharmacy's pharmacists, admins)."""
    with uow:
        row = _find(uow.session, actor, number)
        auth = uow.session.get(Authorization, row.authorization_id)
        return DispenseView(row, effective_dispense_status(row.status, row.confirmation_expires_at, now), auth.number)


def _locked(session: Session, actor: Actor, number: str) -> tuple[Dispense, Authorization, Any]:
    found = _find(session, actor, number)
    patient, auth = lock_authorization(session, found.authorization_id, found.patient_id)
    row = session.get(Dispense, found.id, with_for_update=True, populate_existing=True)
    return row, auth, patient


def complete(uow: UnitOfWork, actor: Actor, now: datetime, program: Program, number: str) -> DispenseView:
    """Record the hand-over (R-DISP-2): within the confirmation window, to an eligible patient.

    The authorization becomes ``dispensed``; a patient's first dispense
    starts therapy (R-PAT-2). Raises ``NotFound`` (another pharmacy's) or
    ``Conflict`` (CONFIRMATION_EXPIRED, PATIENT_NOT_ELIGIBLE, or not
    ``confirmed``).
    """
    version = changes.version_at(program, now)
    if actor.role != UserRole.PHARMACIST.value:
        raise NotFound(NOT_FOUND)
    with uow:
        session = uow.session
        row, auth, patient = _locked(session, actor, number)
        status = effective_dispense_status(row.status, row.confirmation_expires_at, now)
        if status is DispenseStatus.LAPSED:
            raise Conflict(
                f"CONFIRMATION_EXPIRED: the drug must be handed over within {version.confirmation_valid_hours} hours "
                f"of the confirmation; it lapsed at {row.confirmation_expires_at.isoformat()} (R-DISP-2).",
                {"confirmation_number": ["CONFIRMATION_EXPIRED"]},
            )
        patient_machine = PatientLifecycle(patient.status.value, patient.therapy_started_at)
        if status is DispenseStatus.CONFIRMED and not patient_machine.eligible:
            raise Conflict(
                f"PATIENT_NOT_ELIGIBLE: the patient is '{patient.status.value}'; the drug may not be handed over (R-PAT-2).",
                {"patient": ["PATIENT_NOT_ELIGIBLE"]},
            )
        try:
            change = DispenseLifecycle(status.value).complete(now)
            auth_change = AuthorizationLifecycle(effective(auth, row, now).value).dispense(row.confirmation_number, now)
        except DomainError as exc:
            raise changes.translate_domain_error(exc) from None
        row.dispensed_at = now
        changes.record_change(session, actor, row, change, subject(row), version.version)
        changes.record_change(session, actor, auth, auth_change, authorization_subject(auth), version.version)
        if patient.status is PatientStatus.ENROLLED:
            therapy = patient_machine.start_therapy(now)
            patient.therapy_started_at = patient_machine.therapy_started_at
            changes.record_change(session, actor, patient, therapy, patients.subject(patient), version.version)
            patients.refresh_reminders(session, patient, version, now)
        uow.commit()
        return DispenseView(row, row.status, auth.number)


def reverse(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, number: str, reason: str | None
) -> DispenseView:
    """Reverse a confirmation not yet handed over; the authorization is usable again
    while it is still valid (R-DISP-2). Raises ``NotFound`` or ``Conflict``."""
    version = changes.version_at(program, now)
    if actor.role != UserRole.PHARMACIST.value:
        raise NotFound(NOT_FOUND)
    with uow:
        session = uow.session
        row, auth, _patient = _locked(session, actor, number)
        status = effective_dispense_status(row.status, row.confirmation_expires_at, now)
        try:
            change = DispenseLifecycle(status.value).reverse(reason or "reversed by the pharmacy", now)
            auth_change = AuthorizationLifecycle(effective(auth, row, now).value).release(
                "dispense confirmation reversed", now
            )
        except DomainError as exc:
            raise changes.translate_domain_error(exc) from None
        changes.record_change(session, actor, row, change, subject(row), version.version)
        changes.record_change(session, actor, auth, auth_change, authorization_subject(auth), version.version)
        uow.commit()
        return DispenseView(row, row.status, auth.number)
