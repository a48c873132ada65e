"""The advisory rules of CLINICAL_RULES.md as pure functions, and the two that refuse.

``advise(facts, request, params, tz, now)`` returns every warning (rule ID,
severity, message, evidence) and the refusals of R-CYCLE-3 (the prescriber's
hold) and R-ACK-1 (a critical warning without an acknowledgement). Nothing
else here can deny: warnings are advice. Every number comes from
``ClinicalParams``; lab values are in their code's canonical unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from .calendar import instant_text, local_date
from .clinical_params import ClinicalParams, RenalBand
from .clock import ensure_utc, isoformat_utc
from .courses import CourseFacts, CourseStatus, cycle_position, dosing_days
from .labs import LabKind, code_of
from .reasons import Reason
from .rules import Code, Rule


class Severity(str, Enum):
    INFO = "info"
    CAUTION = "caution"
    CRITICAL = "critical"


@dataclass(frozen=True)
class LabValue:
    """One lab result as a decision reads it: canonical value and unit."""

    loinc: str
    value: float
    unit: str
    collected_at: datetime


@dataclass(frozen=True)
class Acknowledgement:
    """R-ACK-1: who proceeds despite a critical warning says why (the actor and time are the decision's)."""

    rule: Rule
    reason: str
    prescriber_contacted_at: datetime | None


@dataclass(frozen=True)
class ClinicalFacts:
    """The clinical part of a decision's snapshot: the course, the latest relevant labs
    (every serum and urine M-protein result, the latest two of each other code), the
    acknowledgements sent with the request and the capsule strength the decision is about."""

    course: CourseFacts
    labs: tuple[LabValue, ...]
    acknowledgements: tuple[Acknowledgement, ...]
    strength_mg: float | None
    #: For Cockcroft-Gault (R-RENAL-1): whole years of age today and sex from the risk
    #: category; None when not known. Never the date of birth.
    age_years: int | None = None
    female: bool | None = None


@dataclass(frozen=True)
class ClinicalRequest:
    days_supply: int
    quantity: int


@dataclass(frozen=True)
class ClinicalWarning:
    code: str
    rule: Rule
    severity: Severity
    message: str
    evidence: tuple[LabValue, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule.value,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": [
                {"loinc": e.loinc, "value": e.value, "unit": e.unit, "collected_at": isoformat_utc(e.collected_at)}
                for e in self.evidence
            ],
        }

    def summary(self) -> dict[str, str]:
        """What the audit entry and a replay compare: no value, no message."""
        return {"code": self.code, "rule": self.rule.value, "severity": self.severity.value}


@dataclass(frozen=True)
class Advice:
    warnings: tuple[ClinicalWarning, ...]
    reasons: tuple[Reason, ...]


def _series(labs: tuple[LabValue, ...], kind: LabKind) -> list[LabValue]:
    code = code_of(kind)
    return sorted((lab for lab in labs if lab.loinc == code), key=lambda lab: lab.collected_at)


def _latest(labs: tuple[LabValue, ...], kind: LabKind) -> LabValue | None:
    series = _series(labs, kind)
    return series[-1] if series else None


def _fmt(value: float) -> str:
    return f"{value:g}"


# -- R-CBC ---------------------------------------------------------------------------------


def cbc_max_age_days(course: CourseFacts, params: ClinicalParams, now: datetime, tz: ZoneInfo) -> int:
    """R-CBC-1: the shorter window in the first cycles and during a hold."""
    position = cycle_position(course, now, tz)
    if course.status is CourseStatus.ON_HOLD or position.number <= params.cbc_early_cycles:
        return params.cbc_max_age_days_early
    return params.cbc_max_age_days_later


def cbc_window(facts: ClinicalFacts, params: ClinicalParams, now: datetime, tz: ZoneInfo) -> list[ClinicalWarning]:
    """R-CBC-1: an ANC and a platelet result inside the window (calendar days in ``tz``)."""
    max_age = cbc_max_age_days(facts.course, params, now, tz)
    oldest = local_date(now, tz) - timedelta(days=max_age)
    warnings = []
    for kind, label in ((LabKind.ANC, "ANC"), (LabKind.PLATELETS, "platelet")):
        latest = _latest(facts.labs, kind)
        if latest is None:
            warnings.append(
                ClinicalWarning(
                    "CBC_MISSING",
                    Rule.R_CBC_1,
                    Severity.CAUTION,
                    f"No {label} result is on file; one is expected every {max_age} days at this point of the course.",
                )
            )
        elif local_date(latest.collected_at, tz) < oldest:
            warnings.append(
                ClinicalWarning(
                    "CBC_STALE",
                    Rule.R_CBC_1,
                    Severity.CAUTION,
                    f"The latest {label} result is older than {max_age} days; a newer CBC is expected.",
                    (latest,),
                )
            )
    return warnings


def hold_thresholds(facts: ClinicalFacts, params: ClinicalParams) -> list[ClinicalWarning]:
    """R-CBC-2 (platelets) and R-CBC-3 (ANC, the regimen's threshold): critical."""
    warnings = []
    platelets = _latest(facts.labs, LabKind.PLATELETS)
    if platelets is not None and platelets.value < params.platelets_hold_below:
        warnings.append(
            ClinicalWarning(
                "PLATELETS_BELOW_HOLD_THRESHOLD",
                Rule.R_CBC_2,
                Severity.CRITICAL,
                f"The latest platelet count is below the hold threshold of {_fmt(params.platelets_hold_below)} "
                "×10³/µL: the label calls for holding lenalidomide.",
                (platelets,),
            )
        )
    anc = _latest(facts.labs, LabKind.ANC)
    threshold = params.schedule(facts.course.regimen).anc_hold_below
    if anc is not None and anc.value < threshold:
        warnings.append(
            ClinicalWarning(
                "ANC_BELOW_HOLD_THRESHOLD",
                Rule.R_CBC_3,
                Severity.CRITICAL,
                f"The latest ANC is below the hold threshold of {_fmt(threshold)} ×10³/µL "
                f"({facts.course.regimen.value}): the label calls for holding lenalidomide.",
                (anc,),
            )
        )
    return warnings


def ctcae_grades(facts: ClinicalFacts, params: ClinicalParams) -> list[ClinicalWarning]:
    """R-CBC-4: CTCAE v5 grade ≥ 3 neutropenia, thrombocytopenia or anemia."""
    warnings = []
    checks = (
        (LabKind.ANC, "neutropenia", params.neutropenia_grade3_below, params.neutropenia_grade4_below),
        (
            LabKind.PLATELETS,
            "thrombocytopenia",
            params.thrombocytopenia_grade3_below,
            params.thrombocytopenia_grade4_below,
        ),
        (LabKind.HEMOGLOBIN, "anemia", params.anemia_grade3_below, None),
    )
    for kind, name, grade3, grade4 in checks:
        latest = _latest(facts.labs, kind)
        if latest is None or latest.value >= grade3:
            continue
        grade = 4 if grade4 is not None and latest.value < grade4 else 3
        warnings.append(
            ClinicalWarning(
                f"CTCAE_GRADE_{grade}_{name.upper()}",
                Rule.R_CBC_4,
                Severity.CAUTION,
                f"Grade {grade} {name} (CTCAE v5.0) in the latest result.",
                (latest,),
            )
        )
    return warnings


# -- R-DOSE, R-RENAL -----------------------------------------------------------------------


def dose_strength(facts: ClinicalFacts, params: ClinicalParams) -> list[ClinicalWarning]:
    """R-DOSE-1: the course dose and the strength asked for are marketed strengths and agree."""
    problems = []
    course_dose = facts.course.dose_mg
    strengths = ", ".join(_fmt(s) for s in params.strengths_mg)
    if course_dose not in params.strengths_mg:
        problems.append(f"the course dose {_fmt(course_dose)} mg is not a capsule strength ({strengths} mg)")
    if facts.strength_mg is not None:
        if facts.strength_mg not in params.strengths_mg:
            problems.append(f"the strength {_fmt(facts.strength_mg)} mg is not a capsule strength ({strengths} mg)")
        elif facts.strength_mg != course_dose:
            problems.append(
                f"the strength {_fmt(facts.strength_mg)} mg differs from the course dose {_fmt(course_dose)} mg"
            )
    if not problems:
        return []
    return [
        ClinicalWarning(
            "DOSE_STRENGTH_MISMATCH", Rule.R_DOSE_1, Severity.CAUTION, "; ".join(problems).capitalize() + "."
        )
    ]


def maximum_dose(facts: ClinicalFacts, params: ClinicalParams) -> list[ClinicalWarning]:
    """R-DOSE-2: the regimen's maximum daily dose."""
    limit = params.schedule(facts.course.regimen).max_daily_dose_mg
    if facts.course.dose_mg <= limit:
        return []
    return [
        ClinicalWarning(
            "DOSE_ABOVE_MAXIMUM",
            Rule.R_DOSE_2,
            Severity.CRITICAL,
            f"The course dose {_fmt(facts.course.dose_mg)} mg is above the {facts.course.regimen.value} maximum of "
            f"{_fmt(limit)} mg daily.",
        )
    ]


def renal_band(clearance: float, on_dialysis: bool, params: ClinicalParams) -> RenalBand | None:
    """R-RENAL-1: the starting-dose band of a creatinine clearance (None: no adjustment)."""
    if clearance < params.renal_severe_below:
        return params.renal_dialysis if on_dialysis else params.renal_severe
    if clearance < params.renal_moderate_below:
        return params.renal_moderate
    return None


def age_in_years(born: date, today: date) -> int:
    """Whole years from ``born`` to ``today`` (what Cockcroft-Gault reads; never the date itself)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def cockcroft_gault(creatinine_mg_dl: float, age_years: int, weight_kg: float, female: bool) -> float:
    """Estimated creatinine clearance (mL/min): (140 − age) × weight / (72 × serum creatinine),
    × 0.85 for women (Cockcroft & Gault, 1976)."""
    estimate = (140 - age_years) * weight_kg / (72.0 * creatinine_mg_dl)
    return round(estimate * (0.85 if female else 1.0), 1)


def clearance(facts: ClinicalFacts) -> tuple[float, LabValue, bool] | None:
    """R-RENAL-1: the latest measured clearance (2164-2), else Cockcroft-Gault from the latest
    serum creatinine when the weight, age and sex are known: (mL/min, evidence, estimated)."""
    measured = _latest(facts.labs, LabKind.CREATININE_CLEARANCE)
    if measured is not None:
        return measured.value, measured, False
    creatinine = _latest(facts.labs, LabKind.CREATININE)
    weight = facts.course.weight_kg
    if creatinine is None or creatinine.value <= 0 or weight is None or facts.age_years is None or facts.female is None:
        return None
    return cockcroft_gault(creatinine.value, facts.age_years, weight, facts.female), creatinine, True


def renal_dose(facts: ClinicalFacts, params: ClinicalParams) -> list[ClinicalWarning]:
    """R-RENAL-1: the course dose above the band of the latest clearance."""
    found = clearance(facts)
    if found is None:
        return []
    value, latest, estimated = found
    band = renal_band(value, facts.course.on_dialysis, params)
    course = facts.course
    if band is None or (course.dose_mg <= band.dose_mg and course.dose_every_days >= band.every_days):
        return []
    every = "daily" if band.every_days == 1 else f"every {band.every_days * 24} h"
    return [
        ClinicalWarning(
            "DOSE_ABOVE_RENAL_BAND",
            Rule.R_RENAL_1,
            Severity.CAUTION,
            f"The latest creatinine clearance{' (Cockcroft-Gault estimate)' if estimated else ''} calls for "
            f"{_fmt(band.dose_mg)} mg {every}; the course gives "
            f"{_fmt(course.dose_mg)} mg every {course.dose_every_days} day(s).",
            (latest,),
        )
    ]


# -- R-CYCLE, R-VTE --------------------------------------------------------------------------


def cycle_info(facts: ClinicalFacts, tz: ZoneInfo, now: datetime) -> ClinicalWarning:
    """R-CYCLE-1: the cycle number and day, on every decision about the patient."""
    course = facts.course
    position = cycle_position(course, now, tz)
    if not position.started:
        text = f"The course starts on {course.start_date.isoformat()}."
    else:
        phase = "a dosing day" if position.dosing_day else "a rest day"
        text = (
            f"Cycle {position.number}, day {position.day} of {course.cycle_length_days} ({phase}; "
            f"{course.days_on} days on)" + (", on hold." if position.on_hold else ".")
        )
    return ClinicalWarning("CYCLE_POSITION", Rule.R_CYCLE_1, Severity.INFO, text)


def quantity_matches(
    facts: ClinicalFacts, request: ClinicalRequest, params: ClinicalParams, tz: ZoneInfo, now: datetime
) -> list[ClinicalWarning]:
    """R-CYCLE-2: capsules = dosing days in the days' supply × capsules per dosing day."""
    expected = dosing_days(facts.course, now, tz, request.days_supply) * params.capsules_per_dosing_day
    if request.quantity == expected:
        return []
    return [
        ClinicalWarning(
            "QUANTITY_DOSING_DAYS_MISMATCH",
            Rule.R_CYCLE_2,
            Severity.CAUTION,
            f"{request.quantity} capsules for a {request.days_supply}-day supply; the course's schedule has "
            f"{expected} dosing day capsule(s) in that time.",
        )
    ]


def thromboprophylaxis(facts: ClinicalFacts) -> list[ClinicalWarning]:
    """R-VTE-1: no thromboprophylaxis recorded on the course."""
    if facts.course.thromboprophylaxis:
        return []
    return [
        ClinicalWarning(
            "NO_THROMBOPROPHYLAXIS",
            Rule.R_VTE_1,
            Severity.INFO,
            "No thromboprophylaxis is recorded on the course (lenalidomide raises the risk of venous and arterial "
            "thromboembolism).",
        )
    ]


# -- R-RESP ------------------------------------------------------------------------------------


class Response(str, Enum):
    VGPR = "VGPR"
    PR = "PR"
    MR = "MR"
    NONE = "none"


def _rank(r: Response) -> int:
    return [Response.NONE, Response.MR, Response.PR, Response.VGPR].index(r)


def percent_change(value: float, reference: float) -> float:
    return round((value - reference) / reference * 100.0, 6)


def response_category(value: float, baseline: float, params: ClinicalParams) -> Response:
    """R-RESP-1: the IMWG category of a fall from ``baseline`` (serum M-protein)."""
    if baseline <= 0:
        return Response.NONE
    fall = -percent_change(value, baseline)
    if fall >= params.response_vgpr_fall_pct:
        return Response.VGPR
    if fall >= params.response_pr_fall_pct:
        return Response.PR
    if fall >= params.response_mr_fall_pct:
        return Response.MR
    return Response.NONE


def baseline_index(series: list[LabValue], course: CourseFacts, tz: ZoneInfo) -> int:
    """The baseline: the last result on or before the start date, else the first result."""
    before = [i for i, lab in enumerate(series) if local_date(lab.collected_at, tz) <= course.start_date]
    return before[-1] if before else 0


def progression_met(value: float, nadir: float, absolute: float, params: ClinicalParams) -> bool:
    """R-RESP-2: ≥ ``progression_rise_pct`` % above the lowest value and ≥ ``absolute`` higher."""
    rise = round(value - nadir, 6)
    if rise < absolute:
        return False
    return nadir <= 0 or percent_change(value, nadir) >= params.progression_rise_pct


@dataclass(frozen=True)
class Trend:
    """The M-protein trend of one series from its baseline."""

    baseline: LabValue
    latest: LabValue
    change_pct: float
    category: Response
    confirmed: bool
    progression: bool
    progression_confirmed: bool
    nadir: LabValue


def trend(
    series: list[LabValue], course: CourseFacts, absolute: float, params: ClinicalParams, tz: ZoneInfo
) -> Trend | None:
    """The response category and the progression test of ``series`` (None without a result after baseline)."""
    start = baseline_index(series, course, tz)
    after = series[start:]
    if len(after) < 2:
        return None
    baseline, latest, previous = after[0], after[-1], after[-2]
    category = response_category(latest.value, baseline.value, params)
    prev_category = response_category(previous.value, baseline.value, params) if len(after) > 2 else Response.NONE
    confirmed = category is not Response.NONE and _rank(prev_category) >= _rank(category)

    def progression_at(i: int) -> tuple[bool, LabValue]:
        nadir = min(after[:i], key=lambda lab: lab.value)
        return progression_met(after[i].value, nadir.value, absolute, params), nadir

    progression, nadir = progression_at(len(after) - 1)
    progression_confirmed = progression and len(after) > 2 and progression_at(len(after) - 2)[0]
    return Trend(
        baseline,
        latest,
        percent_change(latest.value, baseline.value) if baseline.value > 0 else 0.0,
        category,
        confirmed,
        progression,
        progression_confirmed,
        nadir,
    )


def response(facts: ClinicalFacts, params: ClinicalParams, tz: ZoneInfo) -> list[ClinicalWarning]:
    """R-RESP-1 (serum category) and R-RESP-2 (serum or urine progression)."""
    warnings = []
    serum = trend(
        _series(facts.labs, LabKind.SERUM_M_PROTEIN), facts.course, params.progression_serum_rise_g_dl, params, tz
    )
    urine = trend(
        _series(facts.labs, LabKind.URINE_M_PROTEIN), facts.course, params.progression_urine_rise_mg_24h, params, tz
    )
    if serum is not None and serum.category is not Response.NONE and not serum.progression:
        state = "confirmed" if serum.confirmed else "unconfirmed"
        warnings.append(
            ClinicalWarning(
                f"RESPONSE_{serum.category.value}",
                Rule.R_RESP_1,
                Severity.INFO,
                f"Serum M-protein response {serum.category.value} ({state}, IMWG) from the baseline.",
                (serum.baseline, serum.latest),
            )
        )
    for name, t in (("serum", serum), ("urine", urine)):
        if t is not None and t.progression:
            state = "confirmed" if t.progression_confirmed else "unconfirmed until repeated"
            warnings.append(
                ClinicalWarning(
                    "POSSIBLE_PROGRESSION",
                    Rule.R_RESP_2,
                    Severity.CAUTION,
                    f"Possible progression ({state}, IMWG): the {name} M-protein rose from its lowest value.",
                    (t.nadir, t.latest),
                )
            )
    return warnings


# -- the refusals ----------------------------------------------------------------------------


def hold_reasons(course: CourseFacts) -> list[Reason]:
    """R-CYCLE-3: a course on hold or stopped refuses the authorization or dispense."""
    if course.status is CourseStatus.ACTIVE:
        return []
    what = "put on hold" if course.status is CourseStatus.ON_HOLD else "stopped"
    why = f" (reason: {course.status_reason_code})" if course.status_reason_code else ""
    step = (
        "The prescriber must resume the course (POST /courses/{id}/resume) before lenalidomide is prescribed or "
        "dispensed again."
        if course.status is CourseStatus.ON_HOLD
        else "The course is stopped: the prescriber must start a new course before lenalidomide is prescribed again."
    )
    return [
        Reason(
            Code.TREATMENT_ON_HOLD,
            Rule.R_CYCLE_3,
            f"The prescriber {what} the treatment course on {instant_text(course.status_changed_at)}{why}.",
            step,
        )
    ]


def acknowledgement_reasons(
    warnings: list[ClinicalWarning], acks: tuple[Acknowledgement, ...], who: str
) -> list[Reason]:
    """R-ACK-1: one reason per critical rule without an acknowledgement in the request."""
    acknowledged = {a.rule for a in acks if a.reason.strip()}
    reasons = []
    seen: set[Rule] = set()
    for w in warnings:
        if w.severity is not Severity.CRITICAL or w.rule in acknowledged or w.rule in seen:
            continue
        seen.add(w.rule)
        reasons.append(
            Reason(
                Code.CLINICAL_ALERT_UNACKNOWLEDGED,
                Rule.R_ACK_1,
                f"The critical warning {w.rule.value} ({w.code}) has not been acknowledged.",
                f"Review the warning's evidence; to proceed, the {who} sends `acknowledgements: "
                f'[{{"rule": "{w.rule.value}", "reason": "..."}}]` with the same request.',
            )
        )
    return reasons


def advise(
    facts: ClinicalFacts, request: ClinicalRequest | None, params: ClinicalParams, tz: ZoneInfo, now: datetime, who: str
) -> Advice:
    """Every warning of CLINICAL_RULES.md for ``facts`` at ``now``, and the refusals
    (R-CYCLE-3, R-ACK-1); without a ``request`` (a summary, not a decision) R-CYCLE-2 is not
    checked. ``who`` names the party that acknowledges (prescriber or pharmacist)."""
    now = ensure_utc(now)
    warnings: list[ClinicalWarning] = [cycle_info(facts, tz, now)]
    warnings += cbc_window(facts, params, now, tz)
    warnings += hold_thresholds(facts, params)
    warnings += ctcae_grades(facts, params)
    warnings += dose_strength(facts, params)
    warnings += maximum_dose(facts, params)
    warnings += renal_dose(facts, params)
    if request is not None and facts.course.status is CourseStatus.ACTIVE:
        warnings += quantity_matches(facts, request, params, tz, now)
    warnings += thromboprophylaxis(facts)
    warnings += response(facts, params, tz)
    reasons = hold_reasons(facts.course) + acknowledgement_reasons(warnings, facts.acknowledgements, who)
    return Advice(tuple(warnings), tuple(reasons))
