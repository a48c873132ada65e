"""Patients: risk categories (R-CAT-1, R-CAT-2), enrollment (R-PAT-1) and the
patient life cycle (R-PAT-2)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from .calendar import add_years
from .lifecycle import Lifecycle, Move, StateChange, command
from .program import ProgramVersion
from .rules import Rule


class RiskCategory(str, Enum):
    FRP_ADULT = "FRP_ADULT"
    FRP_CHILD = "FRP_CHILD"
    FNRP_ADULT = "FNRP_ADULT"
    FNRP_CHILD = "FNRP_CHILD"
    MALE_ADULT = "MALE_ADULT"
    MALE_CHILD = "MALE_CHILD"

    @property
    def is_frp(self) -> bool:
        """A female who can get pregnant: pregnancy testing applies."""
        return self in (RiskCategory.FRP_ADULT, RiskCategory.FRP_CHILD)

    @property
    def is_male(self) -> bool:
        return self in (RiskCategory.MALE_ADULT, RiskCategory.MALE_CHILD)

    @property
    def is_fnrp(self) -> bool:
        return self in (RiskCategory.FNRP_ADULT, RiskCategory.FNRP_CHILD)

    @property
    def is_adult(self) -> bool:
        return self.value.endswith("_ADULT")


class MenstrualCycle(str, Enum):
    REGULAR = "regular"
    IRREGULAR = "irregular"


class FnrpReason(str, Enum):
    """R-CAT-2: the only grounds on which a female cannot get pregnant.

    Infertility alone is deliberately absent: it does not exempt.
    """

    HYSTERECTOMY = "hysterectomy"
    BILATERAL_OOPHORECTOMY = "bilateral_oophorectomy"
    NATURAL_MENOPAUSE_24_MONTHS = "natural_menopause_24_months"


class PatientStatus(str, Enum):
    ENROLLED = "enrolled"
    ON_THERAPY = "on_therapy"
    HALTED = "halted"
    NEEDS_INTERVENTION = "needs_intervention"
    DISCONTINUED = "discontinued"


#: R-PAT-2: the statuses in which a patient may get authorizations or dispenses.
ELIGIBLE_STATUSES = frozenset({PatientStatus.ENROLLED.value, PatientStatus.ON_THERAPY.value})


def is_adult(date_of_birth: date, on: date, program: ProgramVersion) -> bool:
    """R-CAT-1: adult means ``adult_age_years`` or older on ``on`` (that birthday counts)."""
    return add_years(date_of_birth, program.adult_age_years) <= on


def enrollment_problems(
    category: RiskCategory,
    date_of_birth: date,
    enrollment_date: date,
    program: ProgramVersion,
    *,
    menstrual_cycle: str | None,
    fnrp_reason: str | None,
    guardian_name: str | None,
    ppaf_signed: bool,
    counseling_completed: bool,
) -> dict[str, list[str]]:
    """Every reason the enrollment is refused, keyed by request field (empty: acceptable).

    R-CAT-1: the category's age band must agree with the date of birth on the
    enrollment date. R-CAT-2: an FNRP category needs a qualifying reason.
    R-PAT-1: a signed PPAF, counseling, and a guardian under ``adult_age_years``.
    """
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if date_of_birth > enrollment_date:
        add("date_of_birth", "Cannot be after the enrollment date.")
        # No age to compare with the category (and none computable near the calendar's end).
        adult = category.is_adult
    else:
        adult = is_adult(date_of_birth, enrollment_date, program)
    if adult != category.is_adult:
        band = "an adult" if adult else f"under {program.adult_age_years}"
        add(
            "risk_category",
            f"{category.value} disagrees with the date of birth: the patient is {band} on the enrollment date "
            f"({Rule.R_CAT_1.value}).",
        )
    if category.is_frp and menstrual_cycle is None:
        add("menstrual_cycle", f"Required for a female who can get pregnant ({Rule.R_PREG_3.value}).")
    if not category.is_frp and menstrual_cycle is not None:
        add("menstrual_cycle", "Only recorded for a female who can get pregnant.")
    if category.is_fnrp and fnrp_reason is None:
        add(
            "fnrp_reason",
            "Required: hysterectomy, bilateral oophorectomy, or natural menopause for 24 consecutive months; "
            f"infertility alone does not exempt ({Rule.R_CAT_2.value}).",
        )
    if not category.is_fnrp and fnrp_reason is not None:
        add("fnrp_reason", "Only recorded for a female who can not get pregnant.")
    if not adult and not guardian_name:
        add(
            "guardian_name",
            f"A guardian co-signs for a patient under {program.adult_age_years} ({Rule.R_PAT_1.value}).",
        )
    if ppaf_signed is not True:
        add("ppaf_signed", f"The Patient-Prescriber Agreement Form must be signed ({Rule.R_PAT_1.value}).")
    if counseling_completed is not True:
        add("counseling_completed", f"The patient must be counseled before enrollment ({Rule.R_PAT_1.value}).")
    return problems


class PatientLifecycle(Lifecycle):
    """R-PAT-2: ``enrolled → on_therapy``; ``enrolled|on_therapy → halted`` (positive
    test; admin ``reinstate``); ``enrolled|on_therapy → needs_intervention`` (survey;
    admin ``resolve_intervention``); any → ``discontinued`` (final).

    A positive pregnancy test also halts a patient who is in ``needs_intervention``:
    R-PREG-4 says it halts "at once", and the intervention must not hide it.
    Reinstatement and resolution return the patient to ``on_therapy`` if
    therapy had started, else to ``enrolled``.
    """

    SUBJECT = "patient"
    STATUS = PatientStatus
    PERSISTED = ("therapy_started_at",)

    def __init__(self, status: PatientStatus | str, therapy_started_at: datetime | None = None):
        super().__init__(status)
        self.therapy_started_at = therapy_started_at

    def _therapy_started(self) -> bool:
        return self.therapy_started_at is not None

    @property
    def eligible(self) -> bool:
        return self.state in ELIGIBLE_STATUSES

    @command("patient.therapy_started", Move(PatientStatus.ENROLLED, PatientStatus.ON_THERAPY))
    def start_therapy(self, now: datetime) -> StateChange:
        change = self._fire(now)
        self.therapy_started_at = now
        return change

    @command(
        "patient.halted",
        Move(
            (PatientStatus.ENROLLED, PatientStatus.ON_THERAPY, PatientStatus.NEEDS_INTERVENTION), PatientStatus.HALTED
        ),
    )
    def halt(self, reason: str, now: datetime, details: dict[str, Any] | None = None) -> StateChange:
        return self._fire(now, {"reason": reason, **(details or {})})

    @command(
        "patient.needs_intervention",
        Move((PatientStatus.ENROLLED, PatientStatus.ON_THERAPY), PatientStatus.NEEDS_INTERVENTION),
    )
    def flag(self, reason: str, now: datetime, details: dict[str, Any] | None = None) -> StateChange:
        return self._fire(now, {"reason": reason, **(details or {})})

    @command(
        "patient.reinstated",
        Move(PatientStatus.HALTED, PatientStatus.ON_THERAPY, conditions=("_therapy_started",)),
        Move(PatientStatus.HALTED, PatientStatus.ENROLLED, unless=("_therapy_started",)),
    )
    def reinstate(self, reason: str, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})

    @command(
        "patient.intervention_resolved",
        Move(PatientStatus.NEEDS_INTERVENTION, PatientStatus.ON_THERAPY, conditions=("_therapy_started",)),
        Move(PatientStatus.NEEDS_INTERVENTION, PatientStatus.ENROLLED, unless=("_therapy_started",)),
    )
    def resolve_intervention(self, reason: str, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})

    @command(
        "patient.discontinued",
        Move(
            (PatientStatus.ENROLLED, PatientStatus.ON_THERAPY, PatientStatus.HALTED, PatientStatus.NEEDS_INTERVENTION),
            PatientStatus.DISCONTINUED,
        ),
    )
    def discontinue(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})
