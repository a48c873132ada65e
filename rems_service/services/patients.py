"""Patients: enrollment (R-PAT-1, R-CAT-1/2), pregnancy tests (R-PREG-1..5),
surveys (R-SURV-1/2) and the patient life cycle (R-PAT-2).

Patients are known to the audit log and events only by ``rems_patient_id``
and their UUID (R-AUD-3); names and date of birth never leave this table.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rems_service.db.models import Patient, PatientSurvey, PregnancyTestRecord, Prescriber
from rems_service.db.repository import PatientListFilter, Repository, patient_subject
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.audit import OUTCOME_COMPLETED
from workflows.calendar import local_date, start_of_day
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
from workflows.rules import Rule
from workflows.surveys import SurveyStatus, answer_problems, evaluate_survey, noncompliance
from workflows.testing import (
    FirstAuthorizationWindow,
    PregnancyResult,
    PregnancyTestingState,
    PregnancyTestingStatus,
    Purpose,
    evaluate_testing,
    first_authorization_window,
    sensitivity_problem,
)

from .authorization_states import void_open_for_patient
from .errors import Conflict, Invalid, NotFound
from .paging import DEFAULT_LIMIT, Page, PageRequest, page_of, prescriber_owner
from .reminders import refresh_reminders
from .state_changes import transition
from .versions import version_at

NOT_FOUND = "Patient not found."

#: Characters of a REMS patient id: Crockford base32, no I, L, O or U to misread.
REMS_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: 10 symbols of 5 bits: 50 random bits, never derived from PHI.
REMS_ID_SYMBOLS = 10


def new_rems_patient_id() -> str:
    body = "".join(secrets.choice(REMS_ID_ALPHABET) for _ in range(REMS_ID_SYMBOLS))
    return f"RP-{body[:5]}-{body[5:]}"


def _visible(actor: Actor, row: Patient | None) -> bool:
    """Admins see every patient; a prescriber sees only the patients enrolled with it."""
    if row is None:
        return False
    return actor.is_admin or (actor.role == UserRole.PRESCRIBER.value and actor.prescriber_id == row.prescriber_id)


def _load(repo: Repository, actor: Actor, patient_id: uuid.UUID, lock: bool = False) -> Patient:
    row: Patient | None = repo.get(Patient, patient_id, lock=lock)
    if row is None or not _visible(actor, row):
        raise NotFound(NOT_FOUND)
    return row


@dataclass(frozen=True)
class Enrollment:
    """What the prescriber's enrollment form says (R-PAT-1, R-CAT-1/2)."""

    first_name: str
    last_name: str
    date_of_birth: date
    risk_category: RiskCategory
    ppaf_signed: bool
    counseling_completed: bool
    menstrual_cycle: str | None = None
    fnrp_reason: str | None = None
    guardian_name: str | None = None

    def problems(self, enrollment_date: date, version: ProgramVersion) -> dict[str, list[str]]:
        return enrollment_problems(
            self.risk_category,
            self.date_of_birth,
            enrollment_date,
            version,
            menstrual_cycle=self.menstrual_cycle,
            fnrp_reason=self.fnrp_reason,
            guardian_name=self.guardian_name,
            ppaf_signed=self.ppaf_signed,
            counseling_completed=self.counseling_completed,
        )

    def audit_inputs(self, prescriber: Prescriber, enrollment_date: date, version: ProgramVersion) -> dict[str, Any]:
        """What the enrollment decision read, without name or date of birth (R-AUD-3)."""
        return {
            "prescriber_status": prescriber.status.value,
            "risk_category": self.risk_category.value,
            "adult_on_enrollment_date": is_adult(self.date_of_birth, enrollment_date, version),
            "enrollment_date": enrollment_date,
            "menstrual_cycle": self.menstrual_cycle,
            "fnrp_reason": self.fnrp_reason,
            "guardian_cosigned": bool(self.guardian_name),
            "ppaf_signed": self.ppaf_signed,
            "counseling_completed": self.counseling_completed,
        }

    def new_patient(self, prescriber: Prescriber, now: datetime) -> Patient:
        return Patient(
            rems_patient_id=new_rems_patient_id(),
            prescriber_id=prescriber.id,
            first_name=self.first_name,
            last_name=self.last_name,
            date_of_birth=self.date_of_birth,
            risk_category=self.risk_category,
            menstrual_cycle=MenstrualCycle(self.menstrual_cycle) if self.menstrual_cycle else None,
            fnrp_reason=FnrpReason(self.fnrp_reason) if self.fnrp_reason else None,
            guardian_name=self.guardian_name,
            status=PatientStatus.ENROLLED,
            status_changed_at=now,
            enrolled_at=now,
            created_at=now,
        )


def _certified_prescriber(repo: Repository, actor: Actor) -> Prescriber:
    """The calling prescriber; ``Conflict`` (PRESCRIBER_NOT_CERTIFIED) unless certified (R-PAT-1)."""
    prescriber = repo.get(Prescriber, actor.prescriber_id) if actor.prescriber_id else None
    if prescriber is None or prescriber.status is not PrescriberStatus.CERTIFIED:
        state = prescriber.status.value if prescriber else "unknown"
        raise Conflict(
            "PRESCRIBER_NOT_CERTIFIED: only a certified prescriber may enroll patients "
            f"({Rule.R_PAT_1.value}); this prescriber is '{state}'.",
            {"prescriber": ["PRESCRIBER_NOT_CERTIFIED"]},
        )
    return prescriber


def _insert_with_fresh_id(repo: Repository, row: Patient) -> None:
    """Insert ``row``, drawing its REMS id again on a (50-bit) collision."""
    for _ in range(5):
        if repo.add_unless_duplicate(row):
            return
        row.rems_patient_id = new_rems_patient_id()
    raise Conflict("Could not allocate a REMS patient id; retry.")  # pragma: no cover


def _record(
    repo: Repository,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    row: Patient,
    action: str,
    inputs: dict[str, Any],
    details: dict[str, Any],
) -> None:
    """The audit entry and the event of something recorded about the patient."""
    repo.append_audit(
        actor=actor,
        action=action,
        outcome=OUTCOME_COMPLETED,
        effective_at=now,
        subject=patient_subject(row),
        program_version=version.version,
        inputs=inputs,
        details=details,
    )
    repo.record_event(action, now, {**patient_subject(row), **details})


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
    version = version_at(program, now)
    form = Enrollment(
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        risk_category=RiskCategory(risk_category),
        ppaf_signed=ppaf_signed,
        counseling_completed=counseling_completed,
        menstrual_cycle=menstrual_cycle,
        fnrp_reason=fnrp_reason,
        guardian_name=guardian_name,
    )
    enrollment_date = local_date(now, version.tz)
    with uow:
        prescriber = _certified_prescriber(uow.repo, actor)
        problems = form.problems(enrollment_date, version)
        if problems:
            raise Invalid("The patient cannot be enrolled.", problems)
        row = form.new_patient(prescriber, now)
        _insert_with_fresh_id(uow.repo, row)
        refresh_reminders(uow.repo, row, version, now)
        details = {"to_state": PatientStatus.ENROLLED.value, "risk_category": form.risk_category.value}
        inputs = form.audit_inputs(prescriber, enrollment_date, version)
        _record(uow.repo, actor, now, version, row, "patient.enrolled", inputs, details)
        uow.commit()
        return row


@dataclass(frozen=True)
class PatientView:
    """The patient with its testing and survey status at a moment. ``first_authorization``
    gives R-PREG-1's windows as dates while the patient has not started therapy (FRP)."""

    patient: Patient
    testing: PregnancyTestingStatus
    survey: SurveyStatus
    program_version: str
    first_authorization: FirstAuthorizationWindow | None = None

    def testing_dict(self) -> dict[str, Any]:
        """``pregnancy_testing`` of the patient view (PregnancyTestingStatusSchema)."""
        window = self.first_authorization
        return {
            "state": self.testing.state.value,
            "next_test_due_at": self.testing.next_test_due_at,
            "next_test_due_on": self.testing.next_test_due_on if self.testing.state is not _NOT_REQUIRED else None,
            "interval_days": self.testing.interval_days,
            "reasons": [r.as_dict() for r in self.testing.reasons],
            "first_authorization": None if window is None else dataclasses.asdict(window),
        }

    def survey_dict(self) -> dict[str, Any]:
        """``survey`` of the patient view (SurveyStatusSchema)."""
        return {
            "last_completed_at": self.survey.last_completed_at,
            "next_due_at": self.survey.next_due_at,
            "next_due_on": self.survey.next_due_on,
            "current": self.survey.current,
            "reasons": [r.as_dict() for r in self.survey.reasons],
        }


_NOT_REQUIRED = PregnancyTestingState.NOT_REQUIRED


def get(uow: UnitOfWork, actor: Actor, now: datetime, program: Program, patient_id: uuid.UUID) -> PatientView:
    """The patient with its testing and survey status at ``now``; the survey counts only
    when complete (R-SURV-3)."""
    version = version_at(program, now)
    with uow:
        row = _load(uow.repo, actor, patient_id)
        inputs = uow.repo.patient_facts(row).testing_inputs()
        testing = evaluate_testing(inputs, version, now, Purpose.AUTHORIZATION)
        survey = evaluate_survey(row.risk_category, uow.repo.last_survey_at(row.id), version, now)
        window = first_authorization_window(inputs, version, now)
        return PatientView(row, testing, survey, version.version, window)


def _refuse_if_discontinued(row: Patient, what: str) -> None:
    if row.status is PatientStatus.DISCONTINUED:
        raise Conflict(
            f"Cannot record a {what} for a discontinued patient.", {"status": ["Current status is 'discontinued'."]}
        )


def _test_problems(
    row: Patient, collected_at: datetime, sensitivity_miu_ml: int, version: ProgramVersion, now: datetime
) -> dict[str, list[str]]:
    """Why a pregnancy test cannot be recorded (R-PREG-5), by field."""
    problems: dict[str, list[str]] = {}
    if not row.risk_category.is_frp:
        problems["patient_id"] = [
            "Pregnancy tests are recorded only for females who can get pregnant; "
            f"this patient is {row.risk_category.value} ({Rule.R_PREG_5.value})."
        ]
    if collected_at > now:
        problems["collected_at"] = [f"Cannot be in the future ({Rule.R_PREG_5.value})."]
    problem = sensitivity_problem(sensitivity_miu_ml, version)
    if problem:
        problems["sensitivity_miu_ml"] = [problem]
    return problems


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
    version = version_at(program, now)
    outcome = PregnancyResult(result)
    with uow:
        repo = uow.repo
        row = _load(repo, actor, patient_id, lock=True)
        problems = _test_problems(row, collected_at, sensitivity_miu_ml, version, now)
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
        repo.add(record)
        details = {
            "test_id": record.id,
            "collected_at": collected_at,
            "result": outcome.value,
            "sensitivity_miu_ml": sensitivity_miu_ml,
        }
        _record(repo, actor, now, version, row, "pregnancy_test.recorded", details, details)
        if outcome is PregnancyResult.POSITIVE:
            _halt_for_positive(repo, actor, now, row, record, version)
        refresh_reminders(repo, row, version, now)
        uow.commit()
        return record, row


def _halt_for_positive(
    repo: Repository, actor: Actor, now: datetime, row: Patient, record: PregnancyTestRecord, version: ProgramVersion
) -> None:
    """R-PREG-4: halt at once (unless already halted), void every open authorization
    and every confirmation not yet handed over, and report the pregnancy."""
    machine = PatientLifecycle(row.status.value, row.therapy_started_at)
    if machine.state != PatientStatus.HALTED.value:
        change = machine.halt("positive pregnancy test", now, {"test_id": record.id, "rule": Rule.R_PREG_4.value})
        repo.record_change(actor, row, change, patient_subject(row), version.version)
    voided = void_open_for_patient(
        repo, actor, now, version, row, "positive pregnancy test", {"test_id": record.id, "rule": Rule.R_PREG_4.value}
    )
    repo.record_event(
        "pregnancy.reported",
        now,
        {
            **patient_subject(row),
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
    version = version_at(program, now)
    answers = {k: v for k, v in answers.items() if v is not None}
    with uow:
        repo = uow.repo
        row = _load(repo, actor, patient_id, lock=True)
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
        repo.add(record)
        details = {"survey_id": record.id, "completed_at": completed_at, "noncompliance": flags}
        inputs = {**details, "answers": dict(answers)}
        _record(repo, actor, now, version, row, "patient_survey.recorded", inputs, details)
        machine = PatientLifecycle(row.status.value, row.therapy_started_at)
        if flags and machine.eligible:
            change = machine.flag(
                "survey revealed non-compliance",
                now,
                {"survey_id": record.id, "noncompliance": flags, "rule": Rule.R_SURV_2.value},
            )
            repo.record_change(actor, row, change, patient_subject(row), version.version)
        refresh_reminders(repo, row, version, now)
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
    version = version_at(program, now)
    return transition(
        uow,
        actor,
        Patient,
        patient_id,
        visible=lambda row: _visible(actor, row),
        not_found=NOT_FOUND,
        build=lambda row: PatientLifecycle(row.status.value, row.therapy_started_at),
        command=command,
        subject=patient_subject,
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


#: The patients listing's cursor tag and key: (``created_at``, ``id``), newest first.
LISTING = "patients"
LISTING_KEY = (datetime, uuid.UUID)
#: At most this many words of a name search.
MAX_NAME_TERMS = 5


def _due_bound(value: date | datetime | None, version: ProgramVersion) -> datetime | None:
    """A "due before" bound: an instant as given, a date as that day's start in the program's zone."""
    if value is None or isinstance(value, datetime):
        return value
    return start_of_day(value, version.tz)


def listing(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    status: str | None = None,
    risk_category: str | None = None,
    test_due_before: date | datetime | None = None,
    survey_due_before: date | datetime | None = None,
    q: str | None = None,
) -> Page[Patient]:
    """The patients the caller may read (a prescriber's own, every one for admins), newest first.

    ``test_due_before`` and ``survey_due_before`` (an instant, or a date meaning
    that day's start in the program's zone) select by the patient row's reminder
    mirrors, ``next_test_due_at`` and ``next_survey_due_at``: recomputed whenever a
    test, a survey or a hand-over is recorded, never read by a decision. A mirror
    differs from the due date the patient view (``get``) computes at ``now`` only
    when the interval in force changed since it was written (therapy past its
    first phase: the mirror is then the earlier; a new program version) or when
    an incomplete survey counted when it was written (before R-SURV-3: `rems jobs
    refresh-reminders` recomputes every mirror); the patient view is authoritative.
    ``q``: every word must occur in the first or the last name, in any case.
    Names are PHI: they are matched in the database and never logged or audited.
    """
    request = PageRequest.of(cursor, limit, LISTING, LISTING_KEY)
    owner = prescriber_owner(actor, "patients")
    bounds_needed = test_due_before is not None or survey_due_before is not None
    version = version_at(program, now) if bounds_needed else None
    terms = tuple(dict.fromkeys((q or "").split()))
    if len(terms) > MAX_NAME_TERMS:
        raise Invalid("The name search has too many words.", {"q": [f"At most {MAX_NAME_TERMS} words."]})
    f = PatientListFilter(
        **owner,
        status=PatientStatus(status) if status else None,
        risk_category=RiskCategory(risk_category) if risk_category else None,
        test_due_before=_due_bound(test_due_before, version) if version else None,
        survey_due_before=_due_bound(survey_due_before, version) if version else None,
        name_terms=terms,
    )
    with uow:
        rows = uow.repo.patients_page(f, request.after, request.fetch)
    return page_of(rows, request.limit, LISTING, lambda row: (row.created_at, row.id))
