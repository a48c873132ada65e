"""Treatment courses (CLINICAL_RULES.md): start, hold, resume, change the dose, stop, read.

Every change locks the patient, then the course (the repository's lock order
starts with the patient), runs the course's ``transitions`` machine, and
writes the course, its event row, the audit entry and the outbox event in one
unit of work. Holds, resumes and dose changes carry a coded reason and the ids
of the lab results behind them (never the values).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rems_service.db.models import Authorization, LabResult, Patient, TreatmentCourse, TreatmentCourseEvent
from rems_service.db.repository import Duplicate, Repository, course_facts, patient_subject
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.advisories import ClinicalFacts, LabValue, Trend, advise, age_in_years, percent_change, trend
from workflows.audit import OUTCOME_COMPLETED
from workflows.authorizations import OPEN_STATUSES, effective_status
from workflows.calendar import local_date
from workflows.clinical_params import ClinicalParams, Regimen
from workflows.clock import isoformat_utc
from workflows.courses import (
    CourseLifecycle,
    CourseReason,
    CourseStatus,
    CyclePosition,
    cycle_calendar,
    cycle_position,
)
from workflows.errors import DomainError
from workflows.labs import ADVISORY_CODES, LabKind, code_of
from workflows.lifecycle import StateChange
from workflows.patients import PatientStatus
from workflows.program import Program, ProgramVersion

from .errors import Conflict, Invalid, NotFound, from_domain_error
from .versions import version_at

NOT_FOUND = "Treatment course not found."
PATIENT_NOT_FOUND = "Patient not found."


def course_subject(row: TreatmentCourse, patient: Patient) -> dict[str, Any]:
    """How the audit log and events name a course: ids only."""
    return {"course_id": row.id, **patient_subject(patient)}


def clinical_params(version: ProgramVersion) -> ClinicalParams:
    if version.clinical is None:
        raise Conflict(f"Program version {version.version} has no clinical parameters; courses cannot be kept.")
    return version.clinical


def _authorization_grants(repo: Repository, number: str | None, patient: Patient, now: datetime) -> bool:
    """A pharmacist reads a patient's course only with a valid authorization for that patient."""
    if not number:
        return False
    auth: Authorization | None = repo.find_authorization(number)
    if auth is None or auth.patient_id != patient.id:
        return False
    holding = repo.holding_dispense(auth.id)
    status = effective_status(auth.status, auth.expires_at, holding.confirmation_expires_at if holding else None, now)
    return status in OPEN_STATUSES


def can_read(repo: Repository, actor: Actor, patient: Patient, now: datetime, authorization_number: str | None) -> bool:
    """Its prescriber, admins, and the pharmacist presenting a valid authorization for the patient."""
    if actor.is_admin:
        return True
    if actor.role == UserRole.PRESCRIBER.value:
        return actor.prescriber_id == patient.prescriber_id
    if actor.role == UserRole.PHARMACIST.value:
        return _authorization_grants(repo, authorization_number, patient, now)
    return False


def _own_patient(repo: Repository, actor: Actor, patient_id: uuid.UUID, lock: bool = True) -> Patient:
    patient: Patient | None = repo.lock_patient(patient_id) if lock else repo.get(Patient, patient_id)
    if patient is None or actor.role != UserRole.PRESCRIBER.value or actor.prescriber_id != patient.prescriber_id:
        raise NotFound(PATIENT_NOT_FOUND)
    return patient


@dataclass(frozen=True)
class NewCourse:
    regimen: Regimen
    start_date: date
    dose_mg: float
    days_on: int | None = None
    cycle_length_days: int | None = None
    dose_every_days: int = 1
    thromboprophylaxis: str | None = None
    on_dialysis: bool = False
    weight_kg: float | None = None


@dataclass(frozen=True)
class CourseView:
    course: TreatmentCourse
    cycle: CyclePosition
    events: Sequence[TreatmentCourseEvent]

    def as_dict(self) -> dict[str, Any]:
        c = self.course
        return {
            "id": c.id,
            "patient_id": c.patient_id,
            "prescriber_id": c.prescriber_id,
            "regimen": c.regimen.value,
            "start_date": c.start_date,
            "dose_mg": c.dose_mg,
            "dose_every_days": c.dose_every_days,
            "days_on": c.days_on,
            "cycle_length_days": c.cycle_length_days,
            "thromboprophylaxis": c.thromboprophylaxis,
            "on_dialysis": c.on_dialysis,
            "weight_kg": c.weight_kg,
            "status": c.status.value,
            "status_changed_at": c.status_changed_at,
            "status_reason_code": c.status_reason_code,
            "status_reason": c.status_reason,
            "cycle": {
                "number": self.cycle.number,
                "day": self.cycle.day,
                "dosing_day": self.cycle.dosing_day,
                "started": self.cycle.started,
            },
            "holds": list(c.holds),
            "events": [
                {
                    "id": e.id,
                    "event": e.event,
                    "at": e.at,
                    "from_state": e.from_state,
                    "to_state": e.to_state,
                    "reason_code": e.reason_code,
                    "reason": e.reason,
                    "from_dose_mg": e.from_dose_mg,
                    "to_dose_mg": e.to_dose_mg,
                    "lab_result_ids": list(e.lab_result_ids),
                    "actor_user_id": e.actor_user_id,
                }
                for e in self.events
            ],
        }


def _view(repo: Repository, row: TreatmentCourse, version: ProgramVersion, now: datetime) -> CourseView:
    return CourseView(row, cycle_position(course_facts(row), now, version.tz), repo.course_events(row.id))


#: How far from today a course may start (days): a start outside is a typing error.
START_DATE_PAST_DAYS = 3650
START_DATE_FUTURE_DAYS = 365


def _problems(new: NewCourse, params: ClinicalParams, today: date) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not -START_DATE_PAST_DAYS <= (new.start_date - today).days <= START_DATE_FUTURE_DAYS:
        problems["start_date"] = [
            f"Must be within {START_DATE_PAST_DAYS} days before and {START_DATE_FUTURE_DAYS} days after today."
        ]
    schedule = params.schedule(new.regimen)
    days_on = new.days_on or schedule.days_on
    length = new.cycle_length_days or schedule.cycle_length_days
    if days_on > length:
        problems["days_on"] = [f"Cannot exceed the cycle length ({length} days)."]
    return problems


def start(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, patient_id: uuid.UUID, new: NewCourse
) -> CourseView:
    """The patient's prescriber starts a course. ``Conflict`` when the patient already has a
    course that is not stopped or is discontinued; ``Invalid`` for days on beyond the cycle."""
    version = version_at(program, now)
    params = clinical_params(version)
    schedule = params.schedule(new.regimen)
    with uow:
        repo = uow.repo
        patient = _own_patient(repo, actor, patient_id)
        if patient.status is PatientStatus.DISCONTINUED:
            raise Conflict("Cannot start a course for a discontinued patient.", {"status": ["discontinued"]})
        problems = _problems(new, params, local_date(now, version.tz))
        if problems:
            raise Invalid("The course cannot be started.", problems)
        current = repo.current_course(patient.id, lock=True)
        if current is not None and current.status is not CourseStatus.STOPPED:
            raise Conflict(
                "The patient already has a course that is not stopped; stop it first.",
                {"status": [f"Course {current.id} is '{current.status.value}'."]},
            )
        row = TreatmentCourse(
            patient_id=patient.id,
            prescriber_id=patient.prescriber_id,
            regimen=new.regimen,
            start_date=new.start_date,
            dose_mg=float(new.dose_mg),
            dose_every_days=new.dose_every_days,
            days_on=new.days_on or schedule.days_on,
            cycle_length_days=new.cycle_length_days or schedule.cycle_length_days,
            thromboprophylaxis=new.thromboprophylaxis,
            on_dialysis=new.on_dialysis,
            weight_kg=new.weight_kg,
            status=CourseStatus.ACTIVE,
            status_changed_at=now,
            holds=[],
            created_at=now,
            created_by=actor.user_id,
        )
        try:
            repo.add(row)
        except Duplicate:
            raise Conflict("The patient already has a course that is not stopped.") from None
        details = {
            "to_state": CourseStatus.ACTIVE.value,
            "regimen": row.regimen.value,
            "start_date": row.start_date,
            "dose_mg": row.dose_mg,
            "days_on": row.days_on,
            "cycle_length_days": row.cycle_length_days,
        }
        repo.add(
            TreatmentCourseEvent(
                course_id=row.id,
                seq=1,
                event="treatment.started",
                at=now,
                to_state=CourseStatus.ACTIVE.value,
                to_dose_mg=row.dose_mg,
                actor_user_id=actor.user_id,
            )
        )
        subject = course_subject(row, patient)
        repo.append_audit(
            actor=actor,
            action="treatment.started",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=subject,
            program_version=version.version,
            inputs={**subject, **details},
            details=details,
        )
        repo.record_event("treatment.started", now, {**subject, **details})
        uow.commit()
        return _view(repo, row, version, now)


def _lab_ids(repo: Repository, patient: Patient, lab_ids: Sequence[uuid.UUID]) -> tuple[str, ...]:
    """The lab results behind a change must be the patient's own (422 otherwise)."""
    wanted = list(dict.fromkeys(lab_ids))
    if not wanted:
        return ()
    found = repo.lab_ids_of(patient.id, wanted)
    missing = [str(i) for i in wanted if i not in found]
    if missing:
        raise Invalid(
            "Unknown lab results.", {"lab_result_ids": [f"Not a lab result of this patient: {', '.join(missing)}."]}
        )
    return tuple(str(i) for i in wanted)


def _change(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    course_id: uuid.UUID,
    command: Callable[[CourseLifecycle, Repository, Patient], StateChange],
) -> CourseView:
    version = version_at(program, now)
    with uow:
        repo = uow.repo
        found: TreatmentCourse | None = repo.get(TreatmentCourse, course_id)
        if found is None:
            raise NotFound(NOT_FOUND)
        patient = repo.lock_patient(found.patient_id)
        if patient is None or actor.role != UserRole.PRESCRIBER.value or actor.prescriber_id != patient.prescriber_id:
            raise NotFound(NOT_FOUND)
        row = repo.get(TreatmentCourse, course_id, lock=True)
        assert row is not None
        machine = CourseLifecycle(row.status, row.dose_mg)
        try:
            change = command(machine, repo, patient)
        except DomainError as exc:
            raise from_domain_error(exc) from None
        row.dose_mg = machine.dose_mg
        row.holds = _holds_after(row.holds, change)
        if change.to_state != change.from_state:
            row.status_reason_code = change.details.get("reason_code")
        subject = course_subject(row, patient)
        repo.record_change(actor, row, change, subject, version.version)
        repo.add(
            TreatmentCourseEvent(
                course_id=row.id,
                seq=len(repo.course_events(row.id)) + 1,
                event=change.event,
                at=change.at,
                from_state=change.from_state,
                to_state=change.to_state,
                reason_code=change.details.get("reason_code"),
                reason=change.details.get("reason"),
                from_dose_mg=change.details.get("from_dose_mg"),
                to_dose_mg=change.details.get("to_dose_mg"),
                lab_result_ids=list(change.details.get("lab_result_ids", [])),
                actor_user_id=actor.user_id,
            )
        )
        uow.commit()
        return _view(repo, row, version, now)


def _holds_after(holds: list[dict[str, Any]], change: StateChange) -> list[dict[str, Any]]:
    """Open a hold period on hold, close it on resume or stop."""
    out = [dict(h) for h in holds]
    at = isoformat_utc(change.at)
    if change.to_state == CourseStatus.ON_HOLD.value:
        out.append({"start": at, "end": None})
    elif change.from_state == CourseStatus.ON_HOLD.value and out and out[-1].get("end") is None:
        out[-1]["end"] = at
    return out


def hold(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    course_id: uuid.UUID,
    *,
    reason_code: str,
    reason: str | None = None,
    lab_result_ids: Sequence[uuid.UUID] = (),
) -> CourseView:
    """The prescriber holds the course (R-CYCLE-3 then refuses authorizations and dispenses)."""
    code = CourseReason(reason_code)
    return _change(
        uow,
        actor,
        now,
        program,
        course_id,
        lambda m, repo, patient: m.hold(code, reason, _lab_ids(repo, patient, lab_result_ids), now),
    )


def resume(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    course_id: uuid.UUID,
    *,
    dose_mg: float | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
    lab_result_ids: Sequence[uuid.UUID] = (),
) -> CourseView:
    """The prescriber resumes a held course, usually at a lower dose."""
    code = CourseReason(reason_code) if reason_code else None
    return _change(
        uow,
        actor,
        now,
        program,
        course_id,
        lambda m, repo, patient: m.resume(dose_mg, code, reason, _lab_ids(repo, patient, lab_result_ids), now),
    )


def change_dose(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    course_id: uuid.UUID,
    *,
    dose_mg: float,
    reason_code: str,
    reason: str | None = None,
    lab_result_ids: Sequence[uuid.UUID] = (),
) -> CourseView:
    """The prescriber changes the dose of an active course."""
    code = CourseReason(reason_code)
    return _change(
        uow,
        actor,
        now,
        program,
        course_id,
        lambda m, repo, patient: m.change_dose(dose_mg, code, reason, _lab_ids(repo, patient, lab_result_ids), now),
    )


def stop(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    course_id: uuid.UUID,
    *,
    reason_code: str,
    reason: str | None = None,
) -> CourseView:
    """The prescriber stops the course (final; a new course may be started)."""
    code = CourseReason(reason_code)
    return _change(uow, actor, now, program, course_id, lambda m, repo, patient: m.stop(code, reason, now))


def get(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    course_id: uuid.UUID,
    authorization_number: str | None = None,
) -> CourseView:
    version = version_at(program, now)
    with uow:
        repo = uow.repo
        row: TreatmentCourse | None = repo.get(TreatmentCourse, course_id)
        patient = repo.get(Patient, row.patient_id) if row is not None else None
        if row is None or patient is None or not can_read(repo, actor, patient, now, authorization_number):
            raise NotFound(NOT_FOUND)
        return _view(repo, row, version, now)


def for_patient(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    patient_id: uuid.UUID,
    authorization_number: str | None = None,
) -> list[CourseView]:
    """Every course of the patient, newest first."""
    version = version_at(program, now)
    with uow:
        repo = uow.repo
        patient = repo.get(Patient, patient_id)
        if patient is None or not can_read(repo, actor, patient, now, authorization_number):
            raise NotFound(PATIENT_NOT_FOUND)
        return [_view(repo, row, version, now) for row in repo.courses_of(patient.id)]


def _point(row: LabResult) -> dict[str, Any]:
    return {
        "lab_id": row.id,
        "collected_at": row.collected_at,
        "value": row.canonical_value,
        "unit": row.canonical_unit,
        "reference_low": row.reference_low,
        "reference_high": row.reference_high,
        "reported_value": row.value,
        "reported_unit": row.unit,
    }


def _trend_dict(t: Trend | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "baseline": {"value": t.baseline.value, "collected_at": t.baseline.collected_at},
        "latest": {"value": t.latest.value, "collected_at": t.latest.collected_at},
        "nadir": {"value": t.nadir.value, "collected_at": t.nadir.collected_at},
        "change_from_baseline_pct": t.change_pct,
        "response_category": t.category.value,
        "response_confirmed": t.confirmed,
        "possible_progression": t.progression,
        "progression_confirmed": t.progression_confirmed,
    }


def _m_series(rows: Sequence[LabResult], code: str, baseline_value: float | None) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row.loinc != code:
            continue
        point = _point(row)
        if baseline_value:
            point["change_from_baseline_pct"] = percent_change(row.canonical_value, baseline_value)
        out.append(point)
    return out


def summary(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    patient_id: uuid.UUID,
    authorization_number: str | None = None,
) -> dict[str, Any]:
    """The patient's treatment as the portal shows it (plain data; ``charts`` draws it).

    Readers as for the course. A patient without a course has ``course: null`` and
    still shows its lab series."""
    version = version_at(program, now)
    params = clinical_params(version)
    with uow:
        repo = uow.repo
        patient = repo.get(Patient, patient_id)
        if patient is None or not can_read(repo, actor, patient, now, authorization_number):
            raise NotFound(PATIENT_NOT_FOUND)
        course = repo.current_course(patient.id)
        rows = repo.lab_results(patient.id)
        events = repo.course_events_of_patient(patient.id)
        view = _view(repo, course, version, now) if course is not None else None
    labs = tuple(
        LabValue(r.loinc, r.canonical_value, r.canonical_unit, r.collected_at)
        for r in rows
        if r.loinc in ADVISORY_CODES
    )
    facts = course_facts(course) if course is not None else None
    regimen = course.regimen if course is not None else Regimen.COMBINATION
    serum_trend = urine_trend = None
    warnings: list[dict[str, Any]] = []
    calendar: list[dict[str, Any]] = []
    if facts is not None:
        known = facts.weight_kg is not None
        clinical = ClinicalFacts(
            facts,
            labs,
            (),
            None,
            age_years=age_in_years(patient.date_of_birth, local_date(now, version.tz)) if known else None,
            female=not patient.risk_category.value.startswith("MALE") if known else None,
        )
        warnings = [w.as_dict() for w in advise(clinical, None, params, version.tz, now, "prescriber").warnings]
        calendar = cycle_calendar(facts, now, version.tz)
        serum = [v for v in labs if v.loinc == code_of(LabKind.SERUM_M_PROTEIN)]
        urine = [v for v in labs if v.loinc == code_of(LabKind.URINE_M_PROTEIN)]
        serum_trend = trend(serum, facts, params.progression_serum_rise_g_dl, params, version.tz)
        urine_trend = trend(urine, facts, params.progression_urine_rise_mg_24h, params, version.tz)
    cbc_series = {
        kind.value: [_point(r) for r in rows if r.loinc == code_of(kind)]
        for kind in (LabKind.ANC, LabKind.PLATELETS, LabKind.HEMOGLOBIN, LabKind.WBC)
    }
    return {
        "patient_id": patient.id,
        "rems_patient_id": patient.rems_patient_id,
        "program_version": version.version,
        "course": view.as_dict() if view is not None else None,
        "calendar": calendar,
        "dose_history": [
            {
                "at": e.at,
                "event": e.event,
                "from_dose_mg": e.from_dose_mg,
                "to_dose_mg": e.to_dose_mg,
                "reason_code": e.reason_code,
            }
            for e in events
            if e.to_dose_mg is not None and e.to_dose_mg != e.from_dose_mg
        ],
        "holds": [
            {
                "at": e.at,
                "event": e.event,
                "reason_code": e.reason_code,
                "reason": e.reason,
                "lab_result_ids": list(e.lab_result_ids),
            }
            for e in events
            if e.event in ("treatment.held", "treatment.resumed", "treatment.stopped")
        ],
        "cbc": {
            "series": cbc_series,
            "units": {"anc": "10*3/uL", "platelets": "10*3/uL", "hemoglobin": "g/dL", "wbc": "10*3/uL"},
            "thresholds": {
                "platelets_hold_below": params.platelets_hold_below,
                "anc_hold_below": params.schedule(regimen).anc_hold_below,
                "thrombocytopenia_grade3_below": params.thrombocytopenia_grade3_below,
                "thrombocytopenia_grade4_below": params.thrombocytopenia_grade4_below,
                "neutropenia_grade3_below": params.neutropenia_grade3_below,
                "neutropenia_grade4_below": params.neutropenia_grade4_below,
                "anemia_grade3_below": params.anemia_grade3_below,
            },
        },
        "m_protein": {
            "serum": _m_series(
                rows, code_of(LabKind.SERUM_M_PROTEIN), serum_trend.baseline.value if serum_trend else None
            ),
            "urine": _m_series(
                rows, code_of(LabKind.URINE_M_PROTEIN), urine_trend.baseline.value if urine_trend else None
            ),
            "serum_trend": _trend_dict(serum_trend),
            "urine_trend": _trend_dict(urine_trend),
            "units": {"serum": "g/dL", "urine": "mg/(24.h)"},
        },
        "warnings": warnings,
    }
