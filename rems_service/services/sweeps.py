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

from rems_service.db.models import Authorization, Dispense, Patient, Pharmacy
from rems_service.db.repository import Repository, authorization_subject, patient_subject, pharmacy_subject
from rems_service.db.uow import UnitOfWork
from workflows.actors import SYSTEM
from workflows.authorizations import AuthorizationLifecycle, AuthorizationStatus
from workflows.dispenses import DispenseStatus, effective_dispense_status
from workflows.participants import PharmacyCertification, PharmacyStatus
from workflows.patients import ELIGIBLE_STATUSES
from workflows.program import Program
from workflows.rules import Rule

from .authorization_states import effective, settle
from .versions import version_at

#: How far ahead reminders are given.
TEST_DUE_AHEAD = timedelta(days=2)
SURVEY_DUE_AHEAD = timedelta(days=2)
AUTHORIZATION_EXPIRY_AHEAD = timedelta(days=1)
PHARMACY_RENEWAL_AHEAD = timedelta(days=30)
#: Rows handled per sweep and kind; the next run takes the rest.
BATCH = 500


def expire_authorization(uow: UnitOfWork, program: Program, now: datetime, authorization_id: uuid.UUID) -> bool:
    """Mirror an authorization's expiry (R-AUTH-3) into its status; True if it changed."""
    version = version_at(program, now)
    with uow:
        repo = uow.repo
        found: Authorization | None = repo.get(Authorization, authorization_id)
        if found is None or found.status not in (AuthorizationStatus.ISSUED, AuthorizationStatus.CONFIRMED):
            return False
        _, row = repo.lock_authorization(authorization_id, found.patient_id)
        holding = settle(repo, SYSTEM, repo.holding_dispense(row.id, lock=True), now, version)
        machine = AuthorizationLifecycle(row.status.value)
        if row.status is AuthorizationStatus.CONFIRMED and holding is None:
            # Its confirmation lapsed (mirrored just now, or earlier): the authorization is free again.
            released = machine.release("dispense confirmation lapsed", now)
            repo.record_change(SYSTEM, row, released, authorization_subject(row), version.version)
        if effective(row, holding, now) is not AuthorizationStatus.EXPIRED:
            uow.commit()  # a lapse may have been mirrored
            return False
        repo.record_change(SYSTEM, row, machine.expire(now), authorization_subject(row), version.version)
        uow.commit()
        return True


def lapse_confirmation(uow: UnitOfWork, program: Program, now: datetime, dispense_id: uuid.UUID) -> bool:
    """Mirror a confirmation's lapse (R-DISP-2) and free its authorization; True if it changed."""
    version = version_at(program, now)
    with uow:
        repo = uow.repo
        row: Dispense | None = repo.get(Dispense, dispense_id)
        if (
            row is None
            or effective_dispense_status(row.status, row.confirmation_expires_at, now) is not DispenseStatus.LAPSED
            or row.status is not DispenseStatus.CONFIRMED
        ):
            return False
        _, auth = repo.lock_authorization(row.authorization_id, row.patient_id)
        if settle(repo, SYSTEM, repo.holding_dispense(auth.id, lock=True), now, version) is not None:
            return False  # pragma: no cover - a live confirmation is not lapsed
        if auth.status is AuthorizationStatus.CONFIRMED:
            released = AuthorizationLifecycle(auth.status.value).release("dispense confirmation lapsed", now)
            repo.record_change(SYSTEM, auth, released, authorization_subject(auth), version.version)
        uow.commit()
        return True


def remind_authorization_expiring(uow: UnitOfWork, now: datetime, authorization_id: uuid.UUID) -> bool:
    """Tell the prescriber an authorization is about to expire unused (once)."""
    with uow:
        repo = uow.repo
        row: Authorization | None = repo.get(Authorization, authorization_id)
        if (
            row is None
            or row.status is not AuthorizationStatus.ISSUED
            or not (now < row.expires_at <= now + AUTHORIZATION_EXPIRY_AHEAD)
        ):
            return False
        if repo.holding_dispense(row.id) is not None:
            return False
        if not repo.notice_once(f"authorization-expiring:{row.id}", now):
            return False
        repo.record_event(
            "authorization.expiring",
            now,
            {
                **authorization_subject(row),
                "expires_at": row.expires_at,
                "action": "Send the prescription to a certified pharmacy before it expires, or void it.",
            },
        )
        uow.commit()
        return True


def remind_patient(uow: UnitOfWork, now: datetime, patient_id: uuid.UUID) -> list[str]:
    """Tell the prescriber a pregnancy test or a survey is due within two days (once each)."""
    sent: list[str] = []
    with uow:
        repo = uow.repo
        row: Patient | None = repo.get(Patient, patient_id)
        if row is None or row.status.value not in ELIGIBLE_STATUSES:
            return sent
        for kind, due_at, ahead, action in (
            (
                "pregnancy_test.due",
                row.next_test_due_at,
                TEST_DUE_AHEAD,
                f"Record a negative pregnancy test before this time ({Rule.R_PREG_3.value}).",
            ),
            (
                "patient_survey.due",
                row.next_survey_due_at,
                SURVEY_DUE_AHEAD,
                f"Have the patient complete the survey before this time ({Rule.R_SURV_1.value}).",
            ),
        ):
            if due_at is None or due_at > now + ahead:
                continue
            if repo.notice_once(f"{kind}:{row.id}:{int(due_at.timestamp())}", now):
                repo.record_event(
                    kind, now, {**patient_subject(row), "due_at": due_at, "overdue": due_at <= now, "action": action}
                )
                sent.append(kind)
        uow.commit()
    return sent


def pharmacy_certification(uow: UnitOfWork, program: Program, now: datetime, pharmacy_id: uuid.UUID) -> str | None:
    """R-PHA-2: warn 30 days before a certification ends (once), expire it after."""
    version = version_at(program, now)
    with uow:
        repo = uow.repo
        row: Pharmacy | None = repo.get(Pharmacy, pharmacy_id, lock=True)
        if row is None or row.status is not PharmacyStatus.CERTIFIED or row.certified_until is None:
            return None
        if row.certified_until <= now:
            machine = PharmacyCertification(row.status, None, row.certified_at, row.certified_until)
            repo.record_change(SYSTEM, row, machine.expire(now), pharmacy_subject(row), version.version)
            uow.commit()
            return "expired"
        if row.certified_until <= now + PHARMACY_RENEWAL_AHEAD and repo.notice_once(
            f"pharmacy-renewal:{row.id}:{int(row.certified_until.timestamp())}", now
        ):
            repo.record_event(
                "pharmacy.certification_expiring",
                now,
                {
                    **pharmacy_subject(row),
                    "certified_until": row.certified_until,
                    "action": f"Renew the pharmacy's certification before it ends ({Rule.R_PHA_2.value}).",
                },
            )
            uow.commit()
            return "warned"
        return None


#: Every count a sweep run reports, zero included (``rems jobs sweep`` prints them all).
SWEEP_KINDS = (
    "authorizations_expired",
    "authorizations_expiring",
    "confirmations_lapsed",
    "patient_reminders",
    "pharmacies_expired",
    "pharmacies_warned",
    "webhook_attempts",
    "events_relayed",
)


@dataclass
class SweepReport:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SWEEP_KINDS, 0))

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


def _due(uow: UnitOfWork, find: Callable[[Repository], list[uuid.UUID]]) -> list[uuid.UUID]:
    with uow:
        return find(uow.repo)


def run(uow_factory: Callable[[], UnitOfWork], program: Program, now: datetime) -> SweepReport:
    """Every sweep once, each reading only its due rows through an index."""
    report = SweepReport()
    expiring_by = now + AUTHORIZATION_EXPIRY_AHEAD
    test_by, survey_by, renewal_by = now + TEST_DUE_AHEAD, now + SURVEY_DUE_AHEAD, now + PHARMACY_RENEWAL_AHEAD
    for auth_id in _due(uow_factory(), lambda repo: repo.authorizations_past_expiry(now, BATCH)):
        report.add("authorizations_expired", expire_authorization(uow_factory(), program, now, auth_id))
    for auth_id in _due(uow_factory(), lambda repo: repo.authorizations_expiring_unused(now, expiring_by, BATCH)):
        report.add("authorizations_expiring", remind_authorization_expiring(uow_factory(), now, auth_id))
    for dispense_id in _due(uow_factory(), lambda repo: repo.confirmations_past_expiry(now, BATCH)):
        report.add("confirmations_lapsed", lapse_confirmation(uow_factory(), program, now, dispense_id))
    for patient_id in _due(uow_factory(), lambda repo: repo.patients_due(test_by, survey_by, BATCH)):
        report.add("patient_reminders", len(remind_patient(uow_factory(), now, patient_id)))
    for pharmacy_id in _due(uow_factory(), lambda repo: repo.pharmacies_certified_until(renewal_by, BATCH)):
        outcome = pharmacy_certification(uow_factory(), program, now, pharmacy_id)
        if outcome:
            report.add(f"pharmacies_{outcome}", 1)
    return report
