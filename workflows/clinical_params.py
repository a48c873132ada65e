"""The ``clinical`` table of the program definition: every number of CLINICAL_RULES.md.

Parsing is strict like the rest of the program file: an unknown key, a
missing key or a value out of range is a problem listed by its dotted path.
A version without a ``clinical`` table has no clinical layer (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Regimen(str, Enum):
    """CLINICAL_RULES.md "Treatment course": with dexamethasone, or maintenance after ASCT."""

    COMBINATION = "combination"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class Schedule:
    """R-CYCLE-1: days on and cycle length of a regimen, its maximum daily dose (R-DOSE-2)
    and its ANC hold threshold (R-CBC-3)."""

    days_on: int
    cycle_length_days: int
    max_daily_dose_mg: float
    anc_hold_below: float


@dataclass(frozen=True)
class RenalBand:
    """R-RENAL-1: the starting dose of a creatinine-clearance band: ``dose_mg`` every ``every_days``."""

    dose_mg: float
    every_days: int


@dataclass(frozen=True)
class ClinicalParams:
    """Every parameter of CLINICAL_RULES.md, in canonical units: counts ×10³/µL,
    hemoglobin and serum M-protein g/dL, urine M-protein mg/24 h, clearance mL/min."""

    #: R-CBC-1: the CBC window in the first ``cbc_early_cycles`` cycles and during a hold, then after.
    cbc_max_age_days_early: int
    cbc_max_age_days_later: int
    cbc_early_cycles: int
    #: R-CBC-2.
    platelets_hold_below: float
    #: R-CBC-4 (CTCAE v5): grade 3 below the first, grade 4 below the second; anemia grade 3 only.
    neutropenia_grade3_below: float
    neutropenia_grade4_below: float
    thrombocytopenia_grade3_below: float
    thrombocytopenia_grade4_below: float
    anemia_grade3_below: float
    #: R-DOSE-1.
    strengths_mg: tuple[float, ...]
    #: R-CYCLE-1, R-DOSE-2, R-CBC-3 per regimen.
    regimens: tuple[tuple[Regimen, Schedule], ...]
    #: R-RENAL-1: clearance below ``renal_moderate_below`` → moderate band; below ``renal_severe_below`` →
    #: severe band (dialysis band when the course says the patient is on dialysis).
    renal_moderate_below: float
    renal_severe_below: float
    renal_moderate: RenalBand
    renal_severe: RenalBand
    renal_dialysis: RenalBand
    #: R-CYCLE-2.
    capsules_per_dosing_day: int
    #: R-RESP-1 (IMWG): falls in serum M-protein from baseline, percent.
    response_mr_fall_pct: float
    response_pr_fall_pct: float
    response_vgpr_fall_pct: float
    #: R-RESP-2 (IMWG): rise from the lowest value, percent, and absolute rises.
    progression_rise_pct: float
    progression_serum_rise_g_dl: float
    progression_urine_rise_mg_24h: float

    def schedule(self, regimen: Regimen) -> Schedule:
        return dict(self.regimens)[regimen]


_KEYS = {
    "cbc_max_age_days",
    "platelets_hold_below",
    "anc_hold_below",
    "ctcae",
    "strengths_mg",
    "max_daily_dose_mg",
    "regimens",
    "renal",
    "capsules_per_dosing_day",
    "response",
}
_CBC_AGE = {"early", "later", "early_cycles"}
_REGIMEN_KEYS = {r.value for r in Regimen}
_SCHEDULE = {"days_on", "cycle_length_days"}
_CTCAE = {
    "neutropenia_grade3_below",
    "neutropenia_grade4_below",
    "thrombocytopenia_grade3_below",
    "thrombocytopenia_grade4_below",
    "anemia_grade3_below",
}
_RENAL = {"moderate_below", "severe_below", "moderate", "severe", "dialysis"}
_BAND = {"dose_mg", "every_days"}
_RESPONSE = {
    "mr_fall_pct",
    "pr_fall_pct",
    "vgpr_fall_pct",
    "progression_rise_pct",
    "progression_serum_rise_g_dl",
    "progression_urine_rise_mg_24h",
}


class _Parse:
    def __init__(self, problems: list[str]):
        self.problems = problems

    def table(self, where: str, data: Any, expected: set[str]) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            self.problems.append(f"{where} must be a table")
            return {}
        for missing in sorted(expected - data.keys()):
            self.problems.append(f"{where}.{missing} is missing")
        for unknown in sorted(data.keys() - expected):
            self.problems.append(f"{where}.{unknown} is not a known parameter")
        return data

    def number(self, where: str, value: Any, maximum: float = 10_000) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= maximum:
            if value is not None:
                self.problems.append(f"{where} must be a number above 0 and at most {maximum}, got {value!r}")
            return 1.0
        return float(value)

    def integer(self, where: str, value: Any, maximum: int = 1000) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
            if value is not None:
                self.problems.append(f"{where} must be an integer between 1 and {maximum}, got {value!r}")
            return 1
        return value

    def band(self, where: str, data: Any) -> RenalBand:
        band = self.table(where, data, _BAND)
        return RenalBand(
            self.number(f"{where}.dose_mg", band.get("dose_mg")),
            self.integer(f"{where}.every_days", band.get("every_days"), 7),
        )


def parse_clinical(data: Any, problems: list[str]) -> ClinicalParams:
    """The ``clinical`` table as ``ClinicalParams``; problems are appended to ``problems``."""
    p = _Parse(problems)
    top = p.table("clinical", data, _KEYS)
    age = p.table("clinical.cbc_max_age_days", top.get("cbc_max_age_days", {}), _CBC_AGE)
    anc = p.table("clinical.anc_hold_below", top.get("anc_hold_below", {}), _REGIMEN_KEYS)
    max_dose = p.table("clinical.max_daily_dose_mg", top.get("max_daily_dose_mg", {}), _REGIMEN_KEYS)
    regimens_table = p.table("clinical.regimens", top.get("regimens", {}), _REGIMEN_KEYS)
    ctcae = p.table("clinical.ctcae", top.get("ctcae", {}), _CTCAE)
    renal = p.table("clinical.renal", top.get("renal", {}), _RENAL)
    response = p.table("clinical.response", top.get("response", {}), _RESPONSE)

    regimens: dict[Regimen, Schedule] = {}
    for regimen in Regimen:
        where = f"clinical.regimens.{regimen.value}"
        sched = p.table(where, regimens_table.get(regimen.value, {}), _SCHEDULE)
        days_on = p.integer(f"{where}.days_on", sched.get("days_on"), 365)
        length = p.integer(f"{where}.cycle_length_days", sched.get("cycle_length_days"), 365)
        if days_on > length:
            problems.append(f"{where}.days_on must not exceed cycle_length_days")
        regimens[regimen] = Schedule(
            days_on=days_on,
            cycle_length_days=length,
            max_daily_dose_mg=p.number(f"clinical.max_daily_dose_mg.{regimen.value}", max_dose.get(regimen.value)),
            anc_hold_below=p.number(f"clinical.anc_hold_below.{regimen.value}", anc.get(regimen.value)),
        )

    strengths = top.get("strengths_mg")
    if not isinstance(strengths, list) or not strengths:
        if strengths is not None:
            problems.append("clinical.strengths_mg must be a non-empty list of numbers")
        strengths = [1.0]
    parsed_strengths = tuple(p.number("clinical.strengths_mg[]", s) for s in strengths)

    params = ClinicalParams(
        cbc_max_age_days_early=p.integer("clinical.cbc_max_age_days.early", age.get("early"), 365),
        cbc_max_age_days_later=p.integer("clinical.cbc_max_age_days.later", age.get("later"), 365),
        cbc_early_cycles=p.integer("clinical.cbc_max_age_days.early_cycles", age.get("early_cycles"), 100),
        platelets_hold_below=p.number("clinical.platelets_hold_below", top.get("platelets_hold_below")),
        neutropenia_grade3_below=p.number(
            "clinical.ctcae.neutropenia_grade3_below", ctcae.get("neutropenia_grade3_below")
        ),
        neutropenia_grade4_below=p.number(
            "clinical.ctcae.neutropenia_grade4_below", ctcae.get("neutropenia_grade4_below")
        ),
        thrombocytopenia_grade3_below=p.number(
            "clinical.ctcae.thrombocytopenia_grade3_below", ctcae.get("thrombocytopenia_grade3_below")
        ),
        thrombocytopenia_grade4_below=p.number(
            "clinical.ctcae.thrombocytopenia_grade4_below", ctcae.get("thrombocytopenia_grade4_below")
        ),
        anemia_grade3_below=p.number("clinical.ctcae.anemia_grade3_below", ctcae.get("anemia_grade3_below")),
        strengths_mg=parsed_strengths,
        regimens=tuple(regimens.items()),
        renal_moderate_below=p.number("clinical.renal.moderate_below", renal.get("moderate_below"), 500),
        renal_severe_below=p.number("clinical.renal.severe_below", renal.get("severe_below"), 500),
        renal_moderate=p.band("clinical.renal.moderate", renal.get("moderate", {})),
        renal_severe=p.band("clinical.renal.severe", renal.get("severe", {})),
        renal_dialysis=p.band("clinical.renal.dialysis", renal.get("dialysis", {})),
        capsules_per_dosing_day=p.integer("clinical.capsules_per_dosing_day", top.get("capsules_per_dosing_day"), 10),
        response_mr_fall_pct=p.number("clinical.response.mr_fall_pct", response.get("mr_fall_pct"), 100),
        response_pr_fall_pct=p.number("clinical.response.pr_fall_pct", response.get("pr_fall_pct"), 100),
        response_vgpr_fall_pct=p.number("clinical.response.vgpr_fall_pct", response.get("vgpr_fall_pct"), 100),
        progression_rise_pct=p.number("clinical.response.progression_rise_pct", response.get("progression_rise_pct")),
        progression_serum_rise_g_dl=p.number(
            "clinical.response.progression_serum_rise_g_dl", response.get("progression_serum_rise_g_dl")
        ),
        progression_urine_rise_mg_24h=p.number(
            "clinical.response.progression_urine_rise_mg_24h", response.get("progression_urine_rise_mg_24h")
        ),
    )
    if params.renal_severe_below >= params.renal_moderate_below:
        problems.append("clinical.renal.severe_below must be below moderate_below")
    if not params.response_mr_fall_pct < params.response_pr_fall_pct < params.response_vgpr_fall_pct:
        problems.append("clinical.response: mr_fall_pct < pr_fall_pct < vgpr_fall_pct is required")
    if params.neutropenia_grade4_below >= params.neutropenia_grade3_below:
        problems.append("clinical.ctcae: neutropenia_grade4_below must be below neutropenia_grade3_below")
    if params.thrombocytopenia_grade4_below >= params.thrombocytopenia_grade3_below:
        problems.append("clinical.ctcae: thrombocytopenia_grade4_below must be below thrombocytopenia_grade3_below")
    return params
