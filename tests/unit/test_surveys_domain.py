"""R-SURV-1, R-SURV-2, R-SURV-3, R-PRES-2, R-CONTRA-1, R-CONTRA-2."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from config.programs import load_program
from tests.helpers import utc
from workflows.patients import RiskCategory
from workflows.surveys import (
    answer_problems,
    evaluate_survey,
    is_complete,
    noncompliance,
    prescriber_survey_reasons,
    unanswered,
)

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


FRP_ALL = {
    "missed_period": False,
    "unprotected_intercourse": False,
    "missed_contraception": False,
    "shared_capsules": False,
    "donated_blood": False,
}
OTHERS_ALL = {"shared_capsules": False, "donated_blood": False}


@pytest.mark.parametrize(
    "category, answers, bad",
    [
        ("MALE_ADULT", {**OTHERS_ALL, "missed_period": True}, ["answers.missed_period"]),
        ("FNRP_ADULT", {**OTHERS_ALL, "unprotected_intercourse": False}, ["answers.unprotected_intercourse"]),
        ("FRP_ADULT", {**FRP_ALL, "missed_period": True}, []),
        ("MALE_ADULT", {**OTHERS_ALL, "missed_period": None}, []),
    ],
)
def test_R_SURV_2_questions_that_do_not_apply_are_refused(category, answers, bad):
    assert sorted(answer_problems(RiskCategory(category), answers)) == bad


def _without(answers, *names):
    return {k: v for k, v in answers.items() if k not in names}


@pytest.mark.parametrize(
    "category, answers, missing",
    [
        # FRP: all five questions, each one missing on its own is refused.
        ("FRP_ADULT", FRP_ALL, []),
        ("FRP_CHILD", {**FRP_ALL, "missed_period": True, "donated_blood": True}, []),
        *(("FRP_ADULT", _without(FRP_ALL, name), [name]) for name in FRP_ALL),
        ("FRP_ADULT", {**FRP_ALL, "missed_contraception": None}, ["missed_contraception"]),
        ("FRP_ADULT", OTHERS_ALL, ["missed_period", "unprotected_intercourse", "missed_contraception"]),
        ("FRP_ADULT", {}, list(FRP_ALL)),
        # Others: shared capsules and donated blood.
        ("FNRP_ADULT", OTHERS_ALL, []),
        ("FNRP_CHILD", _without(OTHERS_ALL, "donated_blood"), ["donated_blood"]),
        ("FNRP_ADULT", {}, ["shared_capsules", "donated_blood"]),
        # Males may also answer unprotected intercourse; they need not.
        ("MALE_ADULT", OTHERS_ALL, []),
        ("MALE_CHILD", {**OTHERS_ALL, "unprotected_intercourse": False}, []),
        ("MALE_ADULT", {"unprotected_intercourse": False, "shared_capsules": False}, ["donated_blood"]),
        ("MALE_ADULT", {}, ["shared_capsules", "donated_blood"]),
        # Only true and false are answers.
        ("MALE_ADULT", {**OTHERS_ALL, "shared_capsules": "no"}, ["shared_capsules"]),
        ("FNRP_ADULT", {**OTHERS_ALL, "donated_blood": 0}, ["donated_blood"]),
    ],
)
def test_R_SURV_3_a_survey_counts_only_when_every_question_is_answered(category, answers, missing):
    cat = RiskCategory(category)
    assert unanswered(cat, answers) == missing
    assert is_complete(cat, answers) is (not missing)
    problems = answer_problems(cat, {k: v for k, v in answers.items() if v is not None})
    assert sorted(name for name in problems if name.removeprefix("answers.") in missing) == sorted(
        f"answers.{name}" for name in missing
    )
    for name in missing:
        assert "R-SURV-3" in problems[f"answers.{name}"][0]


@pytest.mark.parametrize(
    "category, last, today_due",
    [
        pytest.param("FRP_ADULT", NOW - timedelta(days=5), "2026-07-08", id="current-frp"),
        pytest.param("FNRP_ADULT", NOW - timedelta(days=5), "2026-12-09", id="current-fnrp-adult"),
        pytest.param("FRP_ADULT", NOW - timedelta(days=29), "2026-06-15", id="overdue-due-today"),
        pytest.param("MALE_ADULT", None, "2026-06-15", id="none-due-today"),
    ],
)
def test_R_SURV_1_due_date_and_next_step(category, last, today_due):
    status = evaluate_survey(RiskCategory(category), last, PROGRAM, NOW)
    assert status.next_due_on is not None and status.next_due_on.isoformat() == today_due
    for reason in status.reasons:
        assert "R-SURV-3" in reason.next_step and "every question" in reason.next_step
    if last is not None and not status.current:
        # The last day the overdue survey counted.
        assert "2026-06-14" in status.reasons[0].next_step


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
