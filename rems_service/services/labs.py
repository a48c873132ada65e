"""Lab results by LOINC code (CLINICAL_RULES.md "Lab results").

A numeric result is converted to its code's canonical unit (``workflows.labs``)
and stored with the value and unit as sent. A pregnancy test sent as a LOINC
result is recorded by the pregnancy-test use case itself, so it is the same
stored test R-PREG reads (sensitivity rules, halting on a positive and all).

Lab values never leave the patient's record: the audit entry digests them and
names the code; ``lab.recorded`` and ``lab.critical`` carry ids only (and the
rule a critical result crosses).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rems_service.db.models import LabResult, Patient
from rems_service.db.repository import Repository, patient_subject
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.audit import OUTCOME_COMPLETED
from workflows.clinical_params import ClinicalParams, Regimen
from workflows.labs import LOINC, LabKind, LabProblem, normalize
from workflows.patients import PatientStatus
from workflows.program import Program
from workflows.rules import Rule

from . import patients
from .courses import can_read
from .errors import Conflict, Invalid, NotFound
from .versions import version_at

NOT_FOUND = "Patient not found."
PREGNANCY_RESULTS = ("negative", "positive")


@dataclass(frozen=True)
class LabInput:
    loinc: str
    value: Any
    unit: str | None
    collected_at: datetime
    reference_low: float | None = None
    reference_high: float | None = None
    source: str | None = None
    #: Pregnancy tests only (R-PREG-2).
    sensitivity_miu_ml: int | None = None


@dataclass(frozen=True)
class RecordedLab:
    """What was recorded: a ``lab`` row, or for a pregnancy LOINC the pregnancy test's id."""

    id: uuid.UUID
    patient_id: uuid.UUID
    loinc: str
    kind: str
    collected_at: datetime
    value: Any
    unit: str | None
    canonical_value: float | None = None
    canonical_unit: str | None = None
    reference_low: float | None = None
    reference_high: float | None = None
    source: str | None = None
    recorded_at: datetime | None = None
    critical_rules: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "patient_id": self.patient_id,
            "loinc": self.loinc,
            "name": LOINC[self.loinc].name,
            "kind": self.kind,
            "collected_at": self.collected_at,
            "value": self.value,
            "unit": self.unit,
            "canonical_value": self.canonical_value,
            "canonical_unit": self.canonical_unit,
            "reference_low": self.reference_low,
            "reference_high": self.reference_high,
            "source": self.source,
            "recorded_at": self.recorded_at,
            "critical_rules": list(self.critical_rules),
        }


def _recorded(row: LabResult, critical: tuple[str, ...] = ()) -> RecordedLab:
    return RecordedLab(
        id=row.id,
        patient_id=row.patient_id,
        loinc=row.loinc,
        kind=LOINC[row.loinc].kind.value,
        collected_at=row.collected_at,
        value=row.value,
        unit=row.unit,
        canonical_value=row.canonical_value,
        canonical_unit=row.canonical_unit,
        reference_low=row.reference_low,
        reference_high=row.reference_high,
        source=row.source,
        recorded_at=row.recorded_at,
        critical_rules=critical,
    )


def critical_rules(kind: LabKind, value: float, regimen: Regimen | None, params: ClinicalParams) -> tuple[str, ...]:
    """The hold thresholds a canonical value crosses (R-CBC-2, R-CBC-3): what ``lab.critical`` reports."""
    if kind is LabKind.PLATELETS and value < params.platelets_hold_below:
        return (Rule.R_CBC_2.value,)
    if kind is LabKind.ANC and value < params.schedule(regimen or Regimen.COMBINATION).anc_hold_below:
        return (Rule.R_CBC_3.value,)
    return ()


def _pregnancy(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, patient_id: uuid.UUID, lab: LabInput
) -> RecordedLab:
    """A pregnancy LOINC: recorded as the pregnancy test R-PREG reads."""
    code = LOINC[lab.loinc]
    if lab.sensitivity_miu_ml is None:
        raise Invalid(
            "The pregnancy test cannot be recorded.", {"sensitivity_miu_ml": ["Required for pregnancy tests."]}
        )
    if code.quantitative:
        if isinstance(lab.value, bool) or not isinstance(lab.value, (int, float)):
            raise Invalid("The pregnancy test cannot be recorded.", {"value": [f"LOINC {code.code} takes a number."]})
        if lab.unit is None:
            raise Invalid("The pregnancy test cannot be recorded.", {"unit": ["Required (e.g. m[IU]/mL)."]})
        try:
            level = normalize(lab.loinc, lab.value, lab.unit, lab.collected_at, now).canonical_value
        except LabProblem as exc:
            raise Invalid("The pregnancy test cannot be recorded.", {exc.field: [exc.message]}) from None
        # hCG at or above the assay's stated sensitivity is a positive test.
        result = "positive" if level >= lab.sensitivity_miu_ml else "negative"
    else:
        if lab.value not in PREGNANCY_RESULTS:
            raise Invalid(
                "The pregnancy test cannot be recorded.",
                {"value": [f"LOINC {code.code} is qualitative: 'negative' or 'positive'."]},
            )
        result = str(lab.value)
    record, _patient = patients.record_test(
        uow,
        actor,
        now,
        program,
        patient_id,
        collected_at=lab.collected_at,
        result=result,
        sensitivity_miu_ml=lab.sensitivity_miu_ml,
    )
    return RecordedLab(
        id=record.id,
        patient_id=record.patient_id,
        loinc=code.code,
        kind=LabKind.PREGNANCY.value,
        collected_at=record.collected_at,
        value=result if not code.quantitative else lab.value,
        unit=lab.unit,
        recorded_at=record.recorded_at,
    )


def record(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, patient_id: uuid.UUID, lab: LabInput
) -> RecordedLab:
    """Record one lab result of the patient (its prescriber). Raises ``NotFound``,
    ``Invalid`` naming the field (unknown code, inconvertible unit, future time) or
    ``Conflict`` (discontinued patient)."""
    code = LOINC.get(lab.loinc.strip())
    if code is None:
        raise Invalid(
            "The lab result cannot be recorded.",
            {"loinc": [f"LOINC {lab.loinc!r} is not one this service accepts: {', '.join(sorted(LOINC))}."]},
        )
    if code.kind is LabKind.PREGNANCY:
        return _pregnancy(uow, actor, now, program, patient_id, lab)
    try:
        normalized = normalize(code.code, lab.value, lab.unit, lab.collected_at, now)
    except LabProblem as exc:
        raise Invalid("The lab result cannot be recorded.", {exc.field: [exc.message]}) from None
    if lab.reference_low is not None and lab.reference_high is not None and lab.reference_low > lab.reference_high:
        raise Invalid("The lab result cannot be recorded.", {"reference_low": ["Must not exceed reference_high."]})
    version = version_at(program, now)
    with uow:
        repo = uow.repo
        patient = _own_patient(repo, actor, patient_id)
        if patient.status is PatientStatus.DISCONTINUED:
            raise Conflict("Cannot record a lab result for a discontinued patient.", {"status": ["discontinued"]})
        row = LabResult(
            patient_id=patient.id,
            loinc=code.code,
            value=normalized.value,
            unit=str(lab.unit),
            canonical_value=normalized.canonical_value,
            canonical_unit=normalized.canonical_unit,
            collected_at=lab.collected_at,
            reference_low=lab.reference_low,
            reference_high=lab.reference_high,
            source=lab.source,
            recorded_at=now,
            recorded_by=actor.user_id,
        )
        repo.add(row)
        subject = patient_subject(patient)
        course = repo.current_course(patient.id)
        critical = (
            critical_rules(code.kind, row.canonical_value, course.regimen if course else None, version.clinical)
            if version.clinical is not None
            else ()
        )
        # The audit entry digests the values (inputs) and names the code, never the value.
        repo.append_audit(
            actor=actor,
            action="lab.recorded",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=subject,
            program_version=version.version,
            inputs={
                "lab_id": row.id,
                "loinc": row.loinc,
                "value": row.value,
                "unit": row.unit,
                "canonical_value": row.canonical_value,
                "collected_at": row.collected_at,
            },
            details={"lab_id": row.id, "loinc": row.loinc, "critical_rules": list(critical)},
        )
        repo.record_event("lab.recorded", now, {**subject, "lab_id": row.id})
        if critical:
            repo.record_event("lab.critical", now, {**subject, "lab_id": row.id, "rules": list(critical)})
        uow.commit()
        return _recorded(row, critical)


def _own_patient(repo: Repository, actor: Actor, patient_id: uuid.UUID) -> Patient:
    patient = repo.lock_patient(patient_id)
    if patient is None or actor.role != UserRole.PRESCRIBER.value or actor.prescriber_id != patient.prescriber_id:
        raise NotFound(NOT_FOUND)
    return patient


def listing(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    patient_id: uuid.UUID,
    loinc: str | None = None,
    authorization_number: str | None = None,
) -> list[RecordedLab]:
    """The patient's lab results, oldest first (its prescriber, admins, a pharmacist with a valid
    authorization for the patient). Pregnancy tests are listed by the patient's own view."""
    if loinc is not None and loinc not in LOINC:
        raise Invalid("Unknown LOINC code.", {"loinc": [f"{loinc!r} is not one this service accepts."]})
    with uow:
        repo = uow.repo
        patient = repo.get(Patient, patient_id)
        if patient is None or not can_read(repo, actor, patient, now, authorization_number):
            raise NotFound(NOT_FOUND)
        return [_recorded(row) for row in repo.lab_results(patient.id, loinc)]
