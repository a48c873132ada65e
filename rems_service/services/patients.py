"""Patients: enrollment (R-PAT-1, R-CAT-1/2), pregnancy tests (R-PREG-1..5),
surveys (R-SURV-1/2) and the patient life cycle (R-PAT-2).

Patients are known to the audit log and events only by ``rems_patient_id``
and their UUID (R-AUD-3); names and date of birth never leave this table.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from rems_service.db.models import Patient, PatientSurvey, PregnancyTestRecord, Prescriber, UserRole
from rems_service.db.uow import UnitOfWork
from workflows.audit import OUTCOME_COMPLETED
from workflows.calendar import local_date
from workflows.lifecycle import StateChange
from workflows.participants import PrescriberStatus
from workflows.patients import (
    FnrpReason,
    MenstrualCycle,
    PatientLifecycle,
    PatientStatus,
    RiskCategory,
    enrollment_problems,
    is_adult,
)
from workflows.program import Program, ProgramVersion
from workflows.surveys import SurveyStatus, answer_problems, evaluate_survey, noncompliance
from workflows.testing import (
    PregnancyResult,
    PregnancyTest,
    PregnancyTestingInputs,
    PregnancyTestingStatus,
    Purpose,
    evaluate_testing,
    sensitivity_problem,
)

from . import audit, authorizations, changes, events
from .actor import Actor
from .errors import Conflict, Invalid, NotFound

NOT_FOUND = "Patient not found."

#: Characters of a REMS patient id: Crockford base32, no I, L, O or U to misread.
REMS_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: 10 symbols of 5 bits: 50 random bits, never derived from PHI.
REMS_ID_SYMBOLS = 10


def new_rems_patient_id() -> str:
    body = "".join(secrets.choice(REMS_ID_ALPHABET) for _ in range(REMS_ID_SYMBOLS))
    return f"RP-{body[:5]}-{body[5:]}"


def subject(row: Patient) -> dict[str, Any]:
    """How the audit log and events name a patient: ids only (R-AUD-3)."""
    return {"patient_id": row.id, "rems_patient_id": row.rems_patient_id, "prescriber_id": row.prescriber_id}


def _visible(actor: Actor, row: Patient | None) -> bool:
    """Admins see every patient; a prescriber sees only the patients enrolled with it."""
    if row is None:
        return False
    return actor.is_admin or (actor.role == UserRole.PRESCRIBER.value and actor.prescriber_id == row.prescriber_id)


def _load(session: Session, actor: Actor, patient_id: uuid.UUID, lock: bool = False) -> Patient:
    row = session.get(Patient, patient_id, with_for_update=lock)
    if not _visible(actor, row):
        raise NotFound(NOT_FOUND)
    return row


def testing_inputs(row: Patient, tests: list[PregnancyTestRecord]) -> PregnancyTestingInputs:
    """The snapshot the pregnancy-testing rules read for ``row``."""
    return PregnancyTestingInputs(
        risk_category=row.risk_category,
        menstrual_cycle=row.menstrual_cycle,
        therapy_started_at=row.therapy_started_at,
        tests=tuple(PregnancyTest(t.collected_at, t.result, t.sensitivity_miu_ml) for t in tests),
    )


def load_tests(session: Session, patient_id: uuid.UUID) -> list[PregnancyTestRecord]:
    return list(session.exec(select(PregnancyTestRecord).where(PregnancyTestRecord.patient_id == patient_id)).all())


def last_survey_at(session: Session, patient_id: uuid.UUID) -> datetime | None:
    return session.exec(
        select(PatientSurvey.completed_at)
        .where(PatientSurvey.patient_id == patient_id)
        .order_by(PatientSurvey.completed_at.desc())
        .limit(1)
    ).first()


def refresh_reminders(session: Session, row: Patient, version: ProgramVersion, now: datetime) -> None:
    """Mirror when the next pregnancy test and survey are due (for reminders only:
    decisions recompute both from the tests and surveys themselves)."""
    testing = evaluate_testing(testing_inputs(row, load_tests(session, row.id)), version, now, Purpose.DISPENSE)
    row.next_test_due_at = testing.next_test_due_at if row.risk_category.is_frp else None
    row.next_survey_due_at = evaluate_survey(
        row.risk_category, last_survey_at(session, row.id), version, now
    ).next_due_at
    session.add(row)


def enroll(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    *,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    risk_category: str,
    menstrual_cycle: str | None = None,
    fnrp_reason: str | None = None,
    guardian_name: str | None = None,
    ppaf_signed: bool,
    counseling_completed: bool,
) -> Patient:
    """R-PAT-1: enroll a patient with the calling prescriber.

    Raises ``Conflict`` (PRESCRIBER_NOT_CERTIFIED) unless the prescriber is
    certified, ``Invalid`` with every failing field otherwise.
    """
    version = changes.version_at(program, now)
    category = RiskCategory(risk_category)
    enrollment_date = local_date(now, version.tz)
    with uow:
        session = uow.session
        prescriber = session.get(Prescriber, actor.prescriber_id) if actor.prescriber_id else None
        if prescriber is None or prescriber.status is not PrescriberStatus.CERTIFIED:
            state = prescriber.status.value if prescriber else "unknown"
            raise Conflict(
                f"PRESCRIBER_NOT_CERTIFIED: only a certified prescriber may enroll patients (R-PAT-1); this prescriber is '{state}'.",
                {"prescriber": ["PRESCRIBER_NOT_CERTIFIED"]},
            )
        problems = enrollment_problems(
            category,
            date_of_birth,
            enrollment_date,
            version,
            menstrual_cycle=menstrual_cycle,
            fnrp_reason=fnrp_reason,
            guardian_name=guardian_name,
            ppaf_signed=ppaf_signed,
            counseling_completed=counseling_completed,
        )
        if problems:
            raise Invalid("The patient cannot be enrolled.", problems)
        row = Patient(
            prescriber_id=prescriber.id,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=date_of_birth,
            risk_category=category,
            menstrual_cycle=MenstrualCycle(menstrual_cycle) if menstrual_cycle else None,
            fnrp_reason=FnrpReason(fnrp_reason) if fnrp_reason else None,
            guardian_name=guardian_name,
            status=PatientStatus.ENROLLED,
            status_changed_at=now,
            enrolled_at=now,
            created_at=now,
        )
        for _ in range(5):
            row.rems_patient_id = new_rems_patient_id()
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
                break
            except IntegrityError:  # a 50-bit collision: draw again
                continue
        else:  # pragma: no cover
            raise Conflict("Could not allocate a REMS patient id; retry.")
        # What the enrollment decision read, without name or date of birth (R-AUD-3).
        inputs = {
            "prescriber_status": prescriber.status.value,
            "risk_category": category.value,
            "adult_on_enrollment_date": is_adult(date_of_birth, enrollment_date, version),
            "enrollment_date": enrollment_date,
            "menstrual_cycle": menstrual_cycle,
            "fnrp_reason": fnrp_reason,
            "guardian_cosigned": bool(guardian_name),
            "ppaf_signed": ppaf_signed,
            "counseling_completed": counseling_completed,
        }
        refresh_reminders(session, row, version, now)
        details = {"to_state": PatientStatus.ENROLLED.value, "risk_category": category.value}
        audit.append(
            session,
            actor=actor,
            action="patient.enrolled",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=subject(row),
            program_version=version.version,
            inputs=inputs,
            details=details,
        )
        events.record(session, "patient.enrolled", now, {**subject(row), **details})
        uow.commit()
        return row


@dataclass(frozen=True)
class PatientView:
    patient: Patient
    testing: PregnancyTestingStatus
    survey: SurveyStatus
    program_version: str


def get(uow: UnitOfWork, actor: Actor, now: datetime, program: Program, patient_id: uuid.UUID) -> PatientView:
    """The patient with its testing and survey status at ``now``."""
    version = changes.version_at(program, now)
    with uow:
        row = _load(uow.session, actor, patient_id)
        testing = evaluate_testing(
            testing_inputs(row, load_tests(uow.session, row.id)), version, now, Purpose.AUTHORIZATION
        )
        survey = evaluate_survey(row.risk_category, last_survey_at(uow.session, row.id), version, now)
        return PatientView(row, testing, survey, version.version)


def _refuse_if_discontinued(row: Patient, what: str) -> None:
    if row.status is PatientStatus.DISCONTINUED:
        raise Conflict(
            f"Cannot record a {what} for a discontinued patient.", {"status": ["Current status is 'discontinued'."]}
        )


def record_test(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    patient_id: uuid.UUID,
    *,
    collected_at: datetime,
    result: str,
    sensitivity_miu_ml: int,
) -> tuple[PregnancyTestRecord, Patient]:
    """Record a pregnancy test (R-PREG-2, R-PREG-5). A positive halts the patient
    in the same transaction and reports the pregnancy (R-PREG-4).

    Raises ``NotFound``, ``Invalid`` (future date, insensitive test, non-FRP
    patient) or ``Conflict`` (discontinued patient).
    """
    version = changes.version_at(program, now)
    outcome = PregnancyResult(result)
    with uow:
        session = uow.session
        row = _load(session, actor, patient_id, lock=True)
        problems: dict[str, list[str]] = {}
        if not row.risk_category.is_frp:
            problems["patient_id"] = [
                f"Pregnancy tests are recorded only for females who can get pregnant; this patient is {row.risk_category.value} (R-PREG-5)."
            ]
        if collected_at > now:
            problems["collected_at"] = ["Cannot be in the future (R-PREG-5)."]
        problem = sensitivity_problem(sensitivity_miu_ml, version)
        if problem:
            problems["sensitivity_miu_ml"] = [problem]
        if problems:
            raise Invalid("The pregnancy test cannot be recorded.", problems)
        _refuse_if_discontinued(row, "pregnancy test")
        record = PregnancyTestRecord(
            patient_id=row.id,
            collected_at=collected_at,
            result=outcome,
            sensitivity_miu_ml=sensitivity_miu_ml,
            recorded_at=now,
            recorded_by=actor.user_id,
        )
        session.add(record)
        session.flush()
        details = {
            "test_id": record.id,
            "collected_at": collected_at,
            "result": outcome.value,
            "sensitivity_miu_ml": sensitivity_miu_ml,
        }
        audit.append(
            session,
            actor=actor,
            action="pregnancy_test.recorded",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=subject(row),
            program_version=version.version,
            inputs=details,
            details=details,
        )
        events.record(session, "pregnancy_test.recorded", now, {**subject(row), **details})
        if outcome is PregnancyResult.POSITIVE:
            _halt_for_positive(session, actor, now, row, record, version)
        refresh_reminders(session, row, version, now)
        uow.commit()
        return record, row


def _halt_for_positive(
    session: Session, actor: Actor, now: datetime, row: Patient, record: PregnancyTestRecord, version: ProgramVersion
) -> None:
    """R-PREG-4: halt at once (unless already halted), void every open authorization
    and every confirmation not yet handed over, and report the pregnancy."""
    machine = PatientLifecycle(row.status.value, row.therapy_started_at)
    if machine.state != PatientStatus.HALTED.value:
        change = machine.halt("positive pregnancy test", now, {"test_id": record.id, "rule": "R-PREG-4"})
        changes.record_change(session, actor, row, change, subject(row), version.version)
    voided = authorizations.void_open_for_patient(
        session, actor, now, version, row, "positive pregnancy test", {"test_id": record.id, "rule": "R-PREG-4"}
    )
    events.record(
        session,
        "pregnancy.reported",
        now,
        {
            **subject(row),
            "test_id": record.id,
            "collected_at": record.collected_at,
            "patient_status": row.status.value,
            "authorizations_voided": voided,
        },
    )


def record_survey(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    patient_id: uuid.UUID,
    *,
    completed_at: datetime,
    answers: Mapping[str, Any],
) -> tuple[PatientSurvey, Patient]:
    """Record a patient survey (R-SURV-1); non-compliance moves the patient to
    ``needs_intervention`` in the same transaction (R-SURV-2)."""
    version = changes.version_at(program, now)
    answers = {k: v for k, v in answers.items() if v is not None}
    with uow:
        session = uow.session
        row = _load(session, actor, patient_id, lock=True)
        problems = answer_problems(row.risk_category, answers)
        if completed_at > now:
            problems["completed_at"] = ["Cannot be in the future."]
        if problems:
            raise Invalid("The survey cannot be recorded.", problems)
        _refuse_if_discontinued(row, "survey")
        flags = noncompliance(row.risk_category, answers)
        record = PatientSurvey(
            patient_id=row.id,
            completed_at=completed_at,
            answers=dict(answers),
            noncompliance=flags,
            recorded_at=now,
            recorded_by=actor.user_id,
        )
        session.add(record)
        session.flush()
        details = {"survey_id": record.id, "completed_at": completed_at, "noncompliance": flags}
        audit.append(
            session,
            actor=actor,
            action="patient_survey.recorded",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=subject(row),
            program_version=version.version,
            inputs={**details, "answers": dict(answers)},
            details=details,
        )
        events.record(session, "patient_survey.recorded", now, {**subject(row), **details})
        machine = PatientLifecycle(row.status.value, row.therapy_started_at)
        if flags and machine.eligible:
            change = machine.flag(
                "survey revealed non-compliance",
                now,
                {"survey_id": record.id, "noncompliance": flags, "rule": "R-SURV-2"},
            )
            changes.record_change(session, actor, row, change, subject(row), version.version)
        refresh_reminders(session, row, version, now)
        uow.commit()
        return record, row


def _transition(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    patient_id: uuid.UUID,
    command: Callable[[PatientLifecycle], StateChange],
) -> Patient:
    version = changes.version_at(program, now)
    return changes.transition(
        uow,
        actor,
        Patient,
        patient_id,
        visible=lambda row: _visible(actor, row),
        not_found=NOT_FOUND,
        build=lambda row: PatientLifecycle(row.status.value, row.therapy_started_at),
        command=command,
        subject=subject,
        program_version=version.version,
    )


def reinstate(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, patient_id: uuid.UUID, reason: str | None
) -> Patient:
    """R-PAT-2: an administrator reinstates a halted patient after review."""
    return _transition(uow, actor, now, program, patient_id, lambda m: m.reinstate(reason or "reviewed", now))


def resolve_intervention(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, patient_id: uuid.UUID, reason: str | None
) -> Patient:
    """R-PAT-2: an administrator resolves a needs-intervention patient."""
    return _transition(
        uow, actor, now, program, patient_id, lambda m: m.resolve_intervention(reason or "resolved", now)
    )


def discontinue(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, patient_id: uuid.UUID, reason: str | None
) -> Patient:
    """R-PAT-2: the prescriber discontinues the patient (final)."""
    return _transition(uow, actor, now, program, patient_id, lambda m: m.discontinue(reason, now))
