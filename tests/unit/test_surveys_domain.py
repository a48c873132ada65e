"""R-SURV-1, R-SURV-2, R-PRES-2, R-CONTRA-1, R-CONTRA-2."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from config.programs import load_program
from tests.helpers import utc
from workflows.patients import RiskCategory
from workflows.surveys import answer_problems, evaluate_survey, noncompliance, prescriber_survey_reasons

NOW = utc(2026, 6, 15, 12)
PROGRAM = load_program().in_force(NOW)


@pytest.mark.parametrize(
    "category, age_days, current",
    [
        ("FRP_ADULT", 28, True),
        ("FRP_ADULT", 29, False),
        ("MALE_ADULT", 28, True),
        ("MALE_CHILD", 29, False),
        ("FNRP_CHILD", 29, False),
        ("FNRP_ADULT", 29, True),
        ("FNRP_ADULT", 182, True),
        ("FNRP_ADULT", 183, False),
    ],
)
def test_R_SURV_1_survey_currency(category, age_days, current):
    status = evaluate_survey(RiskCategory(category), NOW - timedelta(days=age_days), PROGRAM, NOW)
    assert status.current is current
    if not current:
        assert [r.code.value for r in status.reasons] == ["PATIENT_SURVEY_OVERDUE"] and status.reasons[
            0
        ].rule == "R-SURV-1"


def test_R_SURV_1_no_survey_is_overdue():
    status = evaluate_survey(RiskCategory.MALE_ADULT, None, PROGRAM, NOW)
    assert not status.current and status.next_due_at == NOW


def test_R_SURV_1_next_due_and_time_zone_edge():
    ny = dataclasses.replace(PROGRAM, timezone="America/New_York")
    completed = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)  # 31 May in New York
    status = evaluate_survey(RiskCategory.MALE_ADULT, completed, ny, NOW)
    # Valid through 31 May + 28 days = 28 June (New York); lapses 29 June 00:00 EDT.
    lapse_ny = datetime(2026, 6, 29, 4, 0, tzinfo=UTC)
    assert status.next_due_at == lapse_ny
    # In UTC the same survey is dated 1 June: valid through 29 June, lapses 30 June 00:00 UTC.
    assert evaluate_survey(RiskCategory.MALE_ADULT, completed, PROGRAM, NOW).next_due_at == utc(2026, 6, 30)
    assert evaluate_survey(RiskCategory.MALE_ADULT, completed, ny, lapse_ny - timedelta(microseconds=1)).current
    assert not evaluate_survey(RiskCategory.MALE_ADULT, completed, ny, lapse_ny).current
    assert evaluate_survey(RiskCategory.MALE_ADULT, completed, PROGRAM, lapse_ny).current


@pytest.mark.parametrize(
    "category, answers, flags",
    [
        ("FRP_ADULT", {"missed_period": True}, ["missed_period"]),
        (
            "FRP_CHILD",
            {"unprotected_intercourse": True, "missed_contraception": True},
            ["unprotected_intercourse", "missed_contraception"],
        ),
        ("FRP_ADULT", {"missed_period": False, "shared_capsules": False}, []),
        ("MALE_ADULT", {"unprotected_intercourse": True}, ["unprotected_intercourse"]),
        ("FNRP_ADULT", {"donated_blood": True}, ["donated_blood"]),
        ("MALE_CHILD", {"shared_capsules": True}, ["shared_capsules"]),
        ("FNRP_ADULT", {}, []),
    ],
)
def test_R_SURV_2_noncompliance_flags(category, answers, flags):
    assert noncompliance(RiskCategory(category), answers) == flags


@pytest.mark.parametrize(
    "category, answers, bad",
    [
        ("MALE_ADULT", {"missed_period": True}, ["answers.missed_period"]),
        ("FNRP_ADULT", {"unprotected_intercourse": False}, ["answers.unprotected_intercourse"]),
        ("FRP_ADULT", {"missed_period": True}, []),
        ("MALE_ADULT", {"missed_period": None}, []),
    ],
)
def test_R_SURV_2_questions_that_do_not_apply_are_refused(category, answers, bad):
    assert sorted(answer_problems(RiskCategory(category), answers)) == bad


@pytest.mark.parametrize(
    "category, survey, rules",
    [
        ("MALE_ADULT", {"counseled_on_risks": True, "contraception_confirmed": True}, []),
        ("MALE_ADULT", {"counseled_on_risks": True}, ["R-CONTRA-2"]),
        ("FRP_ADULT", {"counseled_on_risks": True, "contraception_confirmed": True}, []),
        ("FRP_CHILD", {"counseled_on_risks": True, "contraception_confirmed": False}, ["R-CONTRA-1"]),
        ("FNRP_ADULT", {"counseled_on_risks": True}, []),
        ("FNRP_ADULT", {"counseled_on_risks": False}, ["R-PRES-2"]),
        ("FRP_ADULT", {}, ["R-PRES-2", "R-CONTRA-1"]),
    ],
)
def test_R_CONTRA_1_and_2_and_R_PRES_2_prescriber_survey(category, survey, rules):
    reasons = prescriber_survey_reasons(RiskCategory(category), survey)
    assert [r.rule for r in reasons] == rules
    assert all(r.code.value == "PRESCRIBER_SURVEY_INCOMPLETE" for r in reasons)
