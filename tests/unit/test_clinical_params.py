"""The program definition's ``clinical`` table: every parameter of CLINICAL_RULES.md, parsed strictly."""

from __future__ import annotations

import copy
import tomllib

import pytest

from config.programs import PROGRAMS_DIR
from workflows.clinical_params import Regimen
from workflows.errors import ProgramDefinitionError
from workflows.program import parse_program_version


def _document(name: str = "lenalidomide-2026.1.toml") -> dict:
    return tomllib.loads((PROGRAMS_DIR / name).read_text())


@pytest.mark.parametrize("name", ["lenalidomide-2020.1.toml", "lenalidomide-2026.1.toml"])
def test_both_versions_carry_the_catalogue_defaults(name):
    clinical = parse_program_version(_document(name)).clinical
    assert clinical is not None
    assert clinical.platelets_hold_below == 30.0
    assert clinical.schedule(Regimen.COMBINATION).anc_hold_below == 1.0
    assert clinical.schedule(Regimen.MAINTENANCE).anc_hold_below == 1.0
    assert (clinical.cbc_max_age_days_early, clinical.cbc_max_age_days_later, clinical.cbc_early_cycles) == (7, 28, 2)
    assert clinical.strengths_mg == (2.5, 5.0, 10.0, 15.0, 20.0, 25.0)
    assert clinical.schedule(Regimen.COMBINATION).max_daily_dose_mg == 25
    assert clinical.schedule(Regimen.MAINTENANCE).max_daily_dose_mg == 15
    assert (
        clinical.schedule(Regimen.COMBINATION).days_on,
        clinical.schedule(Regimen.COMBINATION).cycle_length_days,
    ) == (
        21,
        28,
    )
    assert (clinical.renal_moderate_below, clinical.renal_severe_below) == (60.0, 30.0)
    assert (clinical.renal_severe.dose_mg, clinical.renal_severe.every_days) == (15.0, 2)
    assert (clinical.response_mr_fall_pct, clinical.response_pr_fall_pct, clinical.response_vgpr_fall_pct) == (
        25.0,
        50.0,
        90.0,
    )
    assert (clinical.progression_rise_pct, clinical.progression_serum_rise_g_dl) == (25.0, 0.5)
    assert clinical.progression_urine_rise_mg_24h == 200.0


def test_a_version_without_a_clinical_table_has_no_clinical_layer():
    doc = _document()
    del doc["clinical"]
    assert parse_program_version(doc).clinical is None


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda c: c.pop("platelets_hold_below"), "clinical.platelets_hold_below is missing"),
        (lambda c: c.update(surprise=1), "clinical.surprise is not a known parameter"),
        (lambda c: c["anc_hold_below"].pop("maintenance"), "clinical.anc_hold_below.maintenance is missing"),
        (lambda c: c.update(platelets_hold_below=-1), "clinical.platelets_hold_below must be a number"),
        (lambda c: c["regimens"]["combination"].update(days_on=29), "days_on must not exceed cycle_length_days"),
        (lambda c: c["renal"].update(severe_below=70), "severe_below must be below moderate_below"),
        (lambda c: c["response"].update(pr_fall_pct=95), "mr_fall_pct < pr_fall_pct < vgpr_fall_pct"),
        (lambda c: c.update(strengths_mg=[]), "clinical.strengths_mg must be a non-empty list"),
    ],
)
def test_a_bad_clinical_table_refuses_the_program(change, problem):
    doc = copy.deepcopy(_document())
    change(doc["clinical"])
    with pytest.raises(ProgramDefinitionError) as caught:
        parse_program_version(doc)
    assert any(problem in p for p in caught.value.problems), caught.value.problems
