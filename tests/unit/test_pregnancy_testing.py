"""R-PREG-1 to R-PREG-4: the pregnancy-testing function, table-driven, both sides of every edge."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from config.programs import load_program
from tests.helpers import utc
from workflows.patients import MenstrualCycle, RiskCategory
from workflows.testing import (
    PregnancyResult,
    PregnancyTest,
    PregnancyTestingInputs,
    PregnancyTestingState,
    Purpose,
    evaluate_testing,
    monitoring_interval_days,
    sensitivity_problem,
)

NOW = utc(2026, 6, 15, 12, 0)
PROGRAM = load_program().in_force(NOW)
NEG, POS = PregnancyResult.NEGATIVE, PregnancyResult.POSITIVE


def ptest(at: datetime, result: PregnancyResult = NEG, sensitivity: int = 25) -> PregnancyTest:
    return PregnancyTest(collected_at=at, result=result, sensitivity_miu_ml=sensitivity)


def frp(
    *tests: PregnancyTest,
    started: datetime | None = None,
    cycle=MenstrualCycle.REGULAR,
    category=RiskCategory.FRP_ADULT,
) -> PregnancyTestingInputs:
    return PregnancyTestingInputs(
        risk_category=category, menstrual_cycle=cycle, therapy_started_at=started, tests=tuple(tests)
    )


def codes(status) -> list[str]:
    return [r.code.value for r in status.reasons]


RECENT = ptest(NOW - timedelta(hours=2))


@pytest.mark.parametrize(
    "first_days_before, met",
    [(9, False), (10, True), (12, True), (14, True), (15, False)],
)
def test_R_PREG_1_first_test_window_10_to_14_days(first_days_before, met):
    status = evaluate_testing(
        frp(ptest(NOW - timedelta(days=first_days_before)), RECENT), PROGRAM, NOW, Purpose.AUTHORIZATION
    )
    assert status.met is met
    if not met:
        assert codes(status) == ["PREGNANCY_TEST_OUT_OF_WINDOW"] and status.reasons[0].rule == "R-PREG-1"


@pytest.mark.parametrize(
    "second_age, met",
    [
        (timedelta(hours=23, minutes=59), True),
        (timedelta(hours=24), True),
        (timedelta(hours=24, minutes=1), False),
        (timedelta(0), True),
    ],
)
def test_R_PREG_1_second_test_within_24_hours(second_age, met):
    status = evaluate_testing(
        frp(ptest(NOW - timedelta(days=12)), ptest(NOW - second_age)), PROGRAM, NOW, Purpose.AUTHORIZATION
    )
    assert status.met is met


def test_R_PREG_1_no_test_is_missing():
    status = evaluate_testing(frp(), PROGRAM, NOW, Purpose.AUTHORIZATION)
    assert codes(status) == ["PREGNANCY_TEST_MISSING"] and status.state is PregnancyTestingState.DUE


def test_R_PREG_1_both_windows_missed_gives_both_reasons():
    status = evaluate_testing(frp(ptest(NOW - timedelta(days=5))), PROGRAM, NOW, Purpose.AUTHORIZATION)
    assert codes(status) == ["PREGNANCY_TEST_OUT_OF_WINDOW", "PREGNANCY_TEST_OUT_OF_WINDOW"]


def test_R_PREG_1_one_test_cannot_fill_both_windows():
    status = evaluate_testing(frp(ptest(NOW - timedelta(days=10))), PROGRAM, NOW, Purpose.AUTHORIZATION)
    assert not status.met


def test_R_PREG_1_calendar_days_count_in_the_program_time_zone():
    """10 calendar days in New York is not 10 days in UTC near midnight."""
    ny = dataclasses.replace(PROGRAM, timezone="America/New_York")
    now = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)  # 14 June, 22:00 in New York
    first = datetime(2026, 6, 5, 3, 0, tzinfo=UTC)  # 4 June, 23:00 in New York
    second = now - timedelta(hours=1)
    # UTC dates: 15 June − 5 June = 10 days (in window). New York dates: 14 − 4 = 10 days too.
    assert evaluate_testing(frp(ptest(first), ptest(second)), ny, now, Purpose.AUTHORIZATION).met
    first_late = datetime(2026, 6, 5, 5, 0, tzinfo=UTC)  # 5 June 01:00 in New York: 9 days
    assert not evaluate_testing(frp(ptest(first_late), ptest(second)), ny, now, Purpose.AUTHORIZATION).met
    assert evaluate_testing(
        frp(ptest(first_late), ptest(second)), PROGRAM, now, Purpose.AUTHORIZATION
    ).met  # UTC: 10 days


@pytest.mark.parametrize(
    "sensitivity, counts",
    [(25, True), (50, True), (51, False), (100, False)],
)
def test_R_PREG_2_sensitivity_50_or_better(sensitivity, counts):
    assert (sensitivity_problem(sensitivity, PROGRAM) is None) is counts
    status = evaluate_testing(
        frp(ptest(NOW - timedelta(days=12)), ptest(NOW - timedelta(hours=1), sensitivity=sensitivity)),
        PROGRAM,
        NOW,
        Purpose.AUTHORIZATION,
    )
    assert status.met is counts


STARTED = NOW - timedelta(days=10)


@pytest.mark.parametrize(
    "therapy_day, cycle, interval",
    [
        (0, MenstrualCycle.REGULAR, 7),
        (27, MenstrualCycle.REGULAR, 7),
        (28, MenstrualCycle.REGULAR, 28),
        (27, MenstrualCycle.IRREGULAR, 7),
        (28, MenstrualCycle.IRREGULAR, 14),
        (200, MenstrualCycle.IRREGULAR, 14),
        (200, None, 14),
    ],
)
def test_R_PREG_3_interval_in_force(therapy_day, cycle, interval):
    inputs = frp(started=NOW - timedelta(days=therapy_day), cycle=cycle)
    assert monitoring_interval_days(inputs, PROGRAM, NOW) == interval


@pytest.mark.parametrize(
    "therapy_day, cycle, test_age_days, met",
    [
        (10, MenstrualCycle.REGULAR, 7, True),
        (10, MenstrualCycle.REGULAR, 8, False),
        (60, MenstrualCycle.IRREGULAR, 14, True),
        (60, MenstrualCycle.IRREGULAR, 15, False),
        (60, MenstrualCycle.REGULAR, 28, True),
        (60, MenstrualCycle.REGULAR, 29, False),
    ],
)
@pytest.mark.parametrize("purpose", list(Purpose))
def test_R_PREG_3_newest_negative_no_older_than_interval(therapy_day, cycle, test_age_days, met, purpose):
    inputs = frp(ptest(NOW - timedelta(days=test_age_days)), started=NOW - timedelta(days=therapy_day), cycle=cycle)
    status = evaluate_testing(inputs, PROGRAM, NOW, purpose)
    assert status.met is met
    if not met:
        assert codes(status) == ["PREGNANCY_TEST_STALE"] and status.reasons[0].rule == "R-PREG-3"


def test_R_PREG_3_next_test_due_is_when_the_newest_negative_lapses():
    collected = utc(2026, 6, 14, 9, 0)
    status = evaluate_testing(frp(ptest(collected), started=NOW - timedelta(days=5)), PROGRAM, NOW, Purpose.DISPENSE)
    assert status.met and status.next_test_due_at == utc(2026, 6, 22)  # 14 June + 7 days valid, lapses 22 June 00:00
    assert not evaluate_testing(
        frp(ptest(collected), started=NOW - timedelta(days=5)), PROGRAM, utc(2026, 6, 22), Purpose.DISPENSE
    ).met
    assert evaluate_testing(
        frp(ptest(collected), started=NOW - timedelta(days=5)),
        PROGRAM,
        utc(2026, 6, 22) - timedelta(microseconds=1),
        Purpose.DISPENSE,
    ).met


def test_R_PREG_3_dispense_before_therapy_uses_the_first_phase_interval():
    status = evaluate_testing(frp(ptest(NOW - timedelta(days=8))), PROGRAM, NOW, Purpose.DISPENSE)
    assert codes(status) == ["PREGNANCY_TEST_STALE"]
    assert evaluate_testing(frp(ptest(NOW - timedelta(days=7))), PROGRAM, NOW, Purpose.DISPENSE).met


@pytest.mark.parametrize("purpose", list(Purpose))
def test_R_PREG_4_positive_after_the_newest_negative_is_never_met(purpose):
    inputs = frp(
        ptest(NOW - timedelta(days=12)),
        ptest(NOW - timedelta(hours=3)),
        ptest(NOW - timedelta(hours=1), POS),
        started=None,
    )
    status = evaluate_testing(inputs, PROGRAM, NOW, purpose)
    assert (
        not status.met
        and codes(status) == ["PREGNANCY_TEST_POSITIVE"]
        and status.state is PregnancyTestingState.POSITIVE
    )


def test_R_PREG_4_simultaneous_positive_and_negative_is_positive():
    at = NOW - timedelta(hours=1)
    status = evaluate_testing(
        frp(ptest(NOW - timedelta(days=12)), ptest(at), ptest(at, POS)), PROGRAM, NOW, Purpose.AUTHORIZATION
    )
    assert codes(status) == ["PREGNANCY_TEST_POSITIVE"]


def test_R_PREG_4_a_newer_negative_after_reinstatement_counts_again():
    inputs = frp(ptest(NOW - timedelta(days=3), POS), ptest(NOW - timedelta(days=1)), started=NOW - timedelta(days=40))
    assert evaluate_testing(inputs, PROGRAM, NOW, Purpose.DISPENSE).met


@pytest.mark.parametrize(
    "category", [RiskCategory.FNRP_ADULT, RiskCategory.FNRP_CHILD, RiskCategory.MALE_ADULT, RiskCategory.MALE_CHILD]
)
def test_R_PREG_5_testing_applies_only_to_frp(category):
    status = evaluate_testing(frp(category=category, cycle=None), PROGRAM, NOW, Purpose.AUTHORIZATION)
    assert status.met and status.state is PregnancyTestingState.NOT_REQUIRED


def test_R_PREG_5_future_tests_do_not_count():
    inputs = frp(ptest(NOW - timedelta(days=12)), ptest(NOW + timedelta(minutes=5)))
    assert not evaluate_testing(inputs, PROGRAM, NOW, Purpose.AUTHORIZATION).met


def test_frp_child_is_tested_like_frp_adult():
    inputs = frp(ptest(NOW - timedelta(days=12)), RECENT, category=RiskCategory.FRP_CHILD)
    assert evaluate_testing(inputs, PROGRAM, NOW, Purpose.AUTHORIZATION).met
