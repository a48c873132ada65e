"""Clinical facts for the pure tests of CLINICAL_RULES.md: a course, lab values, acknowledgements.

``NOW`` is the one of ``test_decision_rules`` (2026-06-15 12:00 UTC); the program zone is UTC.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tests.unit.test_decision_rules import NOW
from workflows.advisories import Acknowledgement, ClinicalFacts, LabValue
from workflows.clinical_params import Regimen
from workflows.courses import CourseFacts, CourseStatus, HoldPeriod
from workflows.rules import Rule

DAY = timedelta(days=1)
ANC, PLT, HGB, WBC = "751-8", "777-3", "718-7", "6690-2"
SERUM, URINE, CREAT, CRCL = "33358-3", "42482-0", "2160-0", "2164-2"
UNITS = {ANC: "10*3/uL", PLT: "10*3/uL", HGB: "g/dL", WBC: "10*3/uL", SERUM: "g/dL", URINE: "mg/(24.h)", CRCL: "mL/min"}


def course(**changes: Any) -> CourseFacts:
    """A combination course at 25 mg started 10 days ago, thromboprophylaxis recorded."""
    base = CourseFacts(
        course_id="course-1",
        regimen=Regimen.COMBINATION,
        start_date=(NOW - 10 * DAY).date(),
        dose_mg=25.0,
        dose_every_days=1,
        days_on=21,
        cycle_length_days=28,
        status=CourseStatus.ACTIVE,
        status_reason_code=None,
        status_changed_at=NOW - 10 * DAY,
        thromboprophylaxis="aspirin 81 mg",
        on_dialysis=False,
        holds=(),
    )
    return replace(base, **changes)


def lab(code: str, value: float, at: datetime = NOW - DAY) -> LabValue:
    return LabValue(code, value, UNITS.get(code, "mg/dL"), at)


def normal_cbc(at: datetime = NOW - DAY) -> tuple[LabValue, ...]:
    return (lab(ANC, 2.5, at), lab(PLT, 200.0, at), lab(HGB, 12.5, at), lab(WBC, 6.0, at))


def facts(
    c: CourseFacts | None = None,
    labs: tuple[LabValue, ...] | None = None,
    acks: tuple[Acknowledgement, ...] = (),
    strength: float | None = 25.0,
) -> ClinicalFacts:
    return ClinicalFacts(c or course(), normal_cbc() if labs is None else labs, acks, strength)


def ack(rule: Rule, reason: str = "prescriber reviewed; proceeding") -> Acknowledgement:
    return Acknowledgement(rule, reason, None)


def held(since: datetime, until: datetime | None = None) -> HoldPeriod:
    return HoldPeriod(since, until)
