"""R-CAT-1, R-CAT-2, R-PAT-1, R-PAT-2: categories, enrollment checks, the patient machine."""

from __future__ import annotations

from datetime import date

import pytest

from config.programs import load_program
from tests.helpers import utc
from workflows.errors import IllegalTransition
from workflows.patients import FnrpReason, PatientLifecycle, RiskCategory, enrollment_problems, is_adult

PROGRAM = load_program().in_force(utc(2026, 6, 1))
ENROLL = date(2026, 6, 1)


def problems(category, dob, **kw):
    args = dict(menstrual_cycle=None, fnrp_reason=None, guardian_name=None, ppaf_signed=True, counseling_completed=True)
    if RiskCategory(category).is_frp:
        args["menstrual_cycle"] = "regular"
    if RiskCategory(category).is_fnrp:
        args["fnrp_reason"] = "hysterectomy"
    if not RiskCategory(category).is_adult:
        args["guardian_name"] = "Guardian"
    args.update(kw)
    return enrollment_problems(RiskCategory(category), dob, ENROLL, PROGRAM, **args)


def test_R_CAT_1_exactly_six_categories():
    assert sorted(c.value for c in RiskCategory) == sorted(
        ["FRP_ADULT", "FRP_CHILD", "FNRP_ADULT", "FNRP_CHILD", "MALE_ADULT", "MALE_CHILD"]
    )


@pytest.mark.parametrize(
    "dob, adult",
    [
        (date(2008, 6, 1), True),  # 18th birthday on the enrollment date
        (date(2008, 6, 2), False),  # 18 tomorrow
        (date(2008, 5, 31), True),
        (date(1950, 1, 1), True),
        (date(2020, 1, 1), False),
    ],
)
@pytest.mark.parametrize("sex", ["FRP", "FNRP", "MALE"])
def test_R_CAT_1_category_must_agree_with_age_on_enrollment_date(dob, adult, sex):
    right = f"{sex}_{'ADULT' if adult else 'CHILD'}"
    wrong = f"{sex}_{'CHILD' if adult else 'ADULT'}"
    assert problems(right, dob) == {}
    assert "risk_category" in problems(wrong, dob)


def test_R_CAT_1_leap_day_birthday_turns_18_on_1_march():
    assert not is_adult(date(2008, 2, 29), date(2026, 2, 28), PROGRAM)
    assert is_adult(date(2008, 2, 29), date(2026, 3, 1), PROGRAM)


def test_R_CAT_1_birth_after_enrollment_is_refused():
    assert "date_of_birth" in problems("MALE_CHILD", date(2026, 6, 2))


@pytest.mark.parametrize(
    "category, reason, ok",
    [
        ("FNRP_ADULT", "hysterectomy", True),
        ("FNRP_ADULT", "bilateral_oophorectomy", True),
        ("FNRP_ADULT", "natural_menopause_24_months", True),
        ("FNRP_ADULT", None, False),
        ("FRP_ADULT", "hysterectomy", False),
        ("MALE_ADULT", "hysterectomy", False),
    ],
)
def test_R_CAT_2_fnrp_needs_a_qualifying_reason(category, reason, ok):
    assert ("fnrp_reason" not in problems(category, date(1960, 1, 1), fnrp_reason=reason)) is ok


def test_R_CAT_2_infertility_is_not_a_reason():
    assert "infertility" not in {r.value for r in FnrpReason}


@pytest.mark.parametrize(
    "category, dob, changes, field",
    [
        ("FRP_ADULT", date(1990, 1, 1), {"menstrual_cycle": None}, "menstrual_cycle"),
        ("MALE_ADULT", date(1990, 1, 1), {"menstrual_cycle": "regular"}, "menstrual_cycle"),
        ("MALE_CHILD", date(2015, 1, 1), {"guardian_name": None}, "guardian_name"),
        ("FRP_CHILD", date(2012, 1, 1), {"guardian_name": ""}, "guardian_name"),
        ("MALE_ADULT", date(1990, 1, 1), {"ppaf_signed": False}, "ppaf_signed"),
        ("MALE_ADULT", date(1990, 1, 1), {"counseling_completed": False}, "counseling_completed"),
    ],
)
def test_R_PAT_1_enrollment_requirements(category, dob, changes, field):
    assert field in problems(category, dob, **changes)


def test_R_PAT_1_adult_needs_no_guardian():
    assert problems("MALE_ADULT", date(1990, 1, 1), guardian_name=None) == {}


def test_R_PAT_1_every_problem_is_listed():
    found = problems("MALE_ADULT", date(2015, 1, 1), ppaf_signed=False, counseling_completed=False)
    assert {"risk_category", "guardian_name", "ppaf_signed", "counseling_completed"} <= set(found)


NOW = utc(2026, 6, 1)
PATIENT_TABLE = {
    ("enrolled", "start_therapy"): "on_therapy",
    ("enrolled", "halt"): "halted",
    ("enrolled", "flag"): "needs_intervention",
    ("enrolled", "reinstate"): None,
    ("enrolled", "resolve_intervention"): None,
    ("enrolled", "discontinue"): "discontinued",
    ("on_therapy", "start_therapy"): None,
    ("on_therapy", "halt"): "halted",
    ("on_therapy", "flag"): "needs_intervention",
    ("on_therapy", "discontinue"): "discontinued",
    ("halted", "halt"): None,
    ("halted", "flag"): None,
    ("halted", "start_therapy"): None,
    ("halted", "discontinue"): "discontinued",
    ("needs_intervention", "halt"): "halted",
    ("needs_intervention", "flag"): None,
    ("needs_intervention", "start_therapy"): None,
    ("needs_intervention", "discontinue"): "discontinued",
    ("discontinued", "start_therapy"): None,
    ("discontinued", "halt"): None,
    ("discontinued", "flag"): None,
    ("discontinued", "reinstate"): None,
    ("discontinued", "resolve_intervention"): None,
    ("discontinued", "discontinue"): None,
}


def run(machine, trigger):
    if trigger == "start_therapy":
        return machine.start_therapy(NOW)
    if trigger == "discontinue":
        return machine.discontinue(None, NOW)
    return getattr(machine, trigger)("r", NOW)


@pytest.mark.parametrize("start, trigger", sorted(PATIENT_TABLE))
def test_R_PAT_2_transition_table(start, trigger):
    machine = PatientLifecycle(start)
    expected = PATIENT_TABLE[(start, trigger)]
    if expected is None:
        with pytest.raises(IllegalTransition):
            run(machine, trigger)
        assert machine.state == start
    else:
        assert run(machine, trigger).to_state == expected


@pytest.mark.parametrize("trigger, start", [("reinstate", "halted"), ("resolve_intervention", "needs_intervention")])
@pytest.mark.parametrize("started, back_to", [(None, "enrolled"), (NOW, "on_therapy")])
def test_R_PAT_2_admin_returns_patient_to_where_therapy_stands(trigger, start, started, back_to):
    machine = PatientLifecycle(start, therapy_started_at=started)
    assert getattr(machine, trigger)("reviewed", NOW).to_state == back_to


@pytest.mark.parametrize(
    "status, eligible",
    [
        ("enrolled", True),
        ("on_therapy", True),
        ("halted", False),
        ("needs_intervention", False),
        ("discontinued", False),
    ],
)
def test_R_PAT_2_only_enrolled_and_on_therapy_are_eligible(status, eligible):
    assert PatientLifecycle(status).eligible is eligible


def test_R_PAT_2_first_dispense_starts_therapy():
    machine = PatientLifecycle("enrolled")
    machine.start_therapy(NOW)
    assert machine.therapy_started_at == NOW and machine.persisted() == {"therapy_started_at": NOW}
