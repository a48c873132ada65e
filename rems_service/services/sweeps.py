"""Scheduled obligations: mirror expiries into status columns and remind people.

Nothing here is needed for a correct decision (decisions compute every
window from timestamps); these keep stored statuses honest for readers and
tell prescribers and pharmacies what to do next. Each function is
idempotent and works on one entity or on the rows that are due, selected
through an index — never the whole table. The same functions serve the
per-entity RQ jobs (scheduled with ``enqueue_at``) and the periodic sweeps
that catch whatever a lost job missed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from rems_service.db.models import Authorization, Dispense, Notice, Patient, Pharmacy
from rems_service.db.uow import UnitOfWork
from workflows.authorizations import AuthorizationLifecycle, AuthorizationStatus
from workflows.dispenses import DispenseStatus, effective_dispense_status
from workflows.participants import PharmacyCertification, PharmacyStatus
from workflows.patients import ELIGIBLE_STATUSES
from workflows.program import Program

from . import authorizations, changes, events, patients, pharmacies
from .actor import SYSTEM

#: How far ahead reminders are given.
TEST_DUE_AHEAD = timedelta(days=2)
SURVEY_DUE_AHEAD = timedelta(days=2)
AUTHORIZATION_EXPIRY_AHEAD = timedelta(days=1)
PHARMACY_RENEWAL_AHEAD = timedelta(days=30)
#: Rows handled per sweep and kind; the next run takes the rest.
BATCH = 500


def _notice_once(session: Session, key: str, now: datetime) -> bool:
    """True the first time ``key`` is noticed (then remembered), False afterwards."""
    try:
        with session.begin_nested():
            session.add(Notice(key=key, created_at=now))
            session.flush()
        return True
    except IntegrityError:
        return False


def expire_authorization(uow: UnitOfWork, program: Program, now: datetime, authorization_id: uuid.UUID) -> bool:
    """Mirror an authorization's expiry (R-AUTH-3) into its status; True if it changed."""
    version = changes.version_at(program, now)
    with uow:
        session = uow.session
        row = session.get(Authorization, authorization_id)
        if row is None or row.status not in (AuthorizationStatus.ISSUED, AuthorizationStatus.CONFIRMED):
            return False
        _, row = authorizations.lock_authorization(session, authorization_id, row.patient_id)
        holding = authorizations.settle_holding(session, SYSTEM, row, now, version)
        if authorizations.effective(row, holding, now) is not AuthorizationStatus.EXPIRED:
            uow.commit()  # a lapsed confirmation may have been mirrored
            return False
        change = AuthorizationLifecycle(AuthorizationStatus.ISSUED.value).expire(now)
        changes.record_change(session, SYSTEM, row, change, authorizations.subject(row), version.version)
        uow.commit()
        return True


def lapse_confirmation(uow: UnitOfWork, program: Program, now: datetime, dispense_id: uuid.UUID) -> bool:
    """Mirror a confirmation's lapse (R-DISP-2) and free its authorization; True if it changed."""
    version = changes.version_at(program, now)
    with uow:
        session = uow.session
        row = session.get(Dispense, dispense_id)
        if (
            row is None
            or effective_dispense_status(row.status, row.confirmation_expires_at, now) is not DispenseStatus.LAPSED
            or row.status is not DispenseStatus.CONFIRMED
        ):
            return False
        _, auth = authorizations.lock_authorization(session, row.authorization_id, row.patient_id)
        if authorizations.settle_holding(session, SYSTEM, auth, now, version) is not None:
            return False  # pragma: no cover - a live confirmation is not lapsed
        if auth.status is AuthorizationStatus.CONFIRMED:
            released = AuthorizationLifecycle(AuthorizationStatus.CONFIRMED.value).release(
                "dispense confirmation lapsed", now
            )
            changes.record_change(session, SYSTEM, auth, released, authorizations.subject(auth), version.version)
        uow.commit()
        return True


def remind_authorization_expiring(uow: UnitOfWork, now: datetime, authorization_id: uuid.UUID) -> bool:
    """Tell the prescriber an authorization is about to expire unused (once)."""
    with uow:
        session = uow.session
        row = session.get(Authorization, authorization_id)
        if (
            row is None
            or row.status is not AuthorizationStatus.ISSUED
            or not (now < row.expires_at <= now + AUTHORIZATION_EXPIRY_AHEAD)
        ):
            return False
        if authorizations.holding_dispense(session, row.id) is not None:
            return False
        if not _notice_once(session, f"authorization-expiring:{row.id}", now):
            return False
        events.record(
            session,
            "authorization.expiring",
            now,
            {
                **authorizations.subject(row),
                "expires_at": row.expires_at,
                "action": "Send the prescription to a certified pharmacy before it expires, or void it.",
            },
        )
        uow.commit()
        return True


def remind_patient(uow: UnitOfWork, now: datetime, patient_id: uuid.UUID) -> list[str]:
    """Tell the prescriber a pregnancy test or a survey is due within two days (once each)."""
    sent = []
    with uow:
        session = uow.session
        row = session.get(Patient, patient_id)
        if row is None or row.status.value not in ELIGIBLE_STATUSES:
            return sent
        for kind, due_at, ahead, action in (
            (
                "pregnancy_test.due",
                row.next_test_due_at,
                TEST_DUE_AHEAD,
                "Record a negative pregnancy test before this time (R-PREG-3).",
            ),
            (
                "patient_survey.due",
                row.next_survey_due_at,
                SURVEY_DUE_AHEAD,
                "Have the patient complete the survey before this time (R-SURV-1).",
            ),
        ):
            if due_at is None or due_at > now + ahead:
                continue
            if _notice_once(session, f"{kind}:{row.id}:{int(due_at.timestamp())}", now):
                events.record(
                    session,
                    kind,
                    now,
                    {**patients.subject(row), "due_at": due_at, "overdue": due_at <= now, "action": action},
                )
                sent.append(kind)
        uow.commit()
    return sent


def pharmacy_certification(uow: UnitOfWork, program: Program, now: datetime, pharmacy_id: uuid.UUID) -> str | None:
    """R-PHA-2: warn 30 days before a certification ends (once), expire it after."""
    version = changes.version_at(program, now)
    with uow:
        session = uow.session
        row = session.get(Pharmacy, pharmacy_id, with_for_update=True)
        if row is None or row.status is not PharmacyStatus.CERTIFIED or row.certified_until is None:
            return None
        if row.certified_until <= now:
            machine = PharmacyCertification(
                PharmacyStatus.CERTIFIED.value,
                row.certified_until - timedelta(microseconds=1),
                row.certified_at,
                row.certified_until,
            )
            changes.record_change(session, SYSTEM, row, machine.expire(now), pharmacies.subject(row), version.version)
            uow.commit()
            return "expired"
        if row.certified_until <= now + PHARMACY_RENEWAL_AHEAD and _notice_once(
            session, f"pharmacy-renewal:{row.id}:{int(row.certified_until.timestamp())}", now
        ):
            events.record(
                session,
                "pharmacy.certification_expiring",
                now,
                {
                    **pharmacies.subject(row),
                    "certified_until": row.certified_until,
                    "action": "Renew the pharmacy's certification before it ends (R-PHA-2).",
                },
            )
            uow.commit()
            return "warned"
        return None


@dataclass
class SweepReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


def _ids(uow: UnitOfWork, query: Any) -> list[Any]:
    with uow:
        return list(uow.session.exec(query.limit(BATCH)).all())


def run(uow_factory: Callable[[], UnitOfWork], program: Program, now: datetime) -> SweepReport:
    """Every sweep once, each reading only its due rows through an index."""
    report = SweepReport()
    open_statuses = [AuthorizationStatus.ISSUED.value, AuthorizationStatus.CONFIRMED.value]
    for auth_id in _ids(
        uow_factory(),
        select(Authorization.id).where(Authorization.expires_at <= now, Authorization.status.in_(open_statuses)),
    ):
        report.add("authorizations_expired", expire_authorization(uow_factory(), program, now, auth_id))
    for auth_id in _ids(
        uow_factory(),
        select(Authorization.id).where(
            Authorization.expires_at > now,
            Authorization.expires_at <= now + AUTHORIZATION_EXPIRY_AHEAD,
            Authorization.status == AuthorizationStatus.ISSUED.value,
        ),
    ):
        report.add("authorizations_expiring", remind_authorization_expiring(uow_factory(), now, auth_id))
    for dispense_id in _ids(
        uow_factory(),
        select(Dispense.id).where(
            Dispense.confirmation_expires_at <= now,
            Dispense.status == DispenseStatus.CONFIRMED.value,
        ),
    ):
        report.add("confirmations_lapsed", lapse_confirmation(uow_factory(), program, now, dispense_id))
    due_patients = set(_ids(uow_factory(), select(Patient.id).where(Patient.next_test_due_at <= now + TEST_DUE_AHEAD)))
    due_patients |= set(
        _ids(uow_factory(), select(Patient.id).where(Patient.next_survey_due_at <= now + SURVEY_DUE_AHEAD))
    )
    for patient_id in sorted(due_patients):
        report.add("patient_reminders", len(remind_patient(uow_factory(), now, patient_id)))
    for pharmacy_id in _ids(
        uow_factory(),
        select(Pharmacy.id).where(
            Pharmacy.certified_until <= now + PHARMACY_RENEWAL_AHEAD,
            Pharmacy.status == PharmacyStatus.CERTIFIED.value,
        ),
    ):
        outcome = pharmacy_certification(uow_factory(), program, now, pharmacy_id)
        if outcome:
            report.add(f"pharmacies_{outcome}", 1)
    return report
