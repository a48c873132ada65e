"""Hypothesis properties of the pregnancy-testing function (R-PREG-1, R-PREG-3, R-PREG-4)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from config.programs import load_program
from tests.helpers import utc
from workflows.patients import MenstrualCycle, RiskCategory
from workflows.testing import PregnancyResult, PregnancyTest, PregnancyTestingInputs, Purpose, evaluate_testing

NOW = utc(2026, 6, 15, 12)
PROGRAM = load_program().in_force(NOW)

offsets = st.integers(min_value=0, max_value=60 * 24 * 60)  # minutes before now, up to 60 days
tests_st = st.builds(
    lambda minutes, result, sens: PregnancyTest(NOW - timedelta(minutes=minutes), result, sens),
    offsets,
    st.sampled_from(list(PregnancyResult)),
    st.integers(min_value=1, max_value=100),
)
inputs_st = st.builds(
    PregnancyTestingInputs,
    risk_category=st.sampled_from([RiskCategory.FRP_ADULT, RiskCategory.FRP_CHILD]),
    menstrual_cycle=st.sampled_from(list(MenstrualCycle)),
    therapy_started_at=st.one_of(st.none(), offsets.map(lambda m: NOW - timedelta(minutes=m))),
    tests=st.lists(tests_st, max_size=8).map(tuple),
)


sensitive = st.integers(min_value=1, max_value=PROGRAM.test_max_sensitivity_miu_ml)


@st.composite
def usually_met(draw: st.DrawFn) -> tuple[PregnancyTestingInputs, Purpose]:
    """An FRP history and a purpose, with negatives added where the rules look for
    them, so that most cases meet the requirement at ``NOW``: one collected
    within ``initial_test_1_window_days`` (R-PREG-1, first test) and one within
    the last ``initial_test_2_window_hours`` and after every other test (R-PREG-1
    second test, R-PREG-3 currency). A case is not met only when the history
    holds a newer positive or an insensitive-only record the draw could not
    outrun; the test skips those with ``assume`` (and Hypothesis fails its health
    check if too few cases are met, so the property can never pass vacuously).
    """
    inputs = draw(inputs_st)
    purpose = draw(st.sampled_from(list(Purpose)))
    earliest, latest = PROGRAM.initial_test_1_window_days
    first = NOW - timedelta(days=draw(st.integers(min_value=earliest, max_value=latest)))
    newest = max((t.collected_at for t in inputs.tests), default=NOW - timedelta(days=61))
    window_minutes = PROGRAM.initial_test_2_window_hours * 60
    second = max(newest + timedelta(minutes=1), NOW - timedelta(minutes=draw(st.integers(0, window_minutes - 1))))
    added = (
        PregnancyTest(first, PregnancyResult.NEGATIVE, draw(sensitive)),
        PregnancyTest(min(second, NOW), PregnancyResult.NEGATIVE, draw(sensitive)),
    )
    return (
        PregnancyTestingInputs(
            inputs.risk_category, inputs.menstrual_cycle, inputs.therapy_started_at, inputs.tests + added
        ),
        purpose,
    )


@settings(max_examples=400, deadline=None)
@given(usually_met(), offsets.filter(lambda m: m < 60 * 24 * 30), sensitive)
def test_a_newer_negative_never_turns_met_into_not_met(case, minutes, sensitivity):
    inputs, purpose = case
    before = evaluate_testing(inputs, PROGRAM, NOW, purpose)
    assume(before.met)
    newest = max(t.collected_at for t in inputs.tests)
    at = max(newest, NOW - timedelta(minutes=minutes))
    added = PregnancyTestingInputs(
        inputs.risk_category,
        inputs.menstrual_cycle,
        inputs.therapy_started_at,
        inputs.tests + (PregnancyTest(at, PregnancyResult.NEGATIVE, sensitivity),),
    )
    after = evaluate_testing(added, PROGRAM, NOW, purpose)
    assert after.met, after.reasons


@settings(max_examples=400, deadline=None)
@given(
    inputs_st,
    st.sampled_from(list(Purpose)),
    st.integers(min_value=0, max_value=60 * 24 * 30),
    st.integers(min_value=1, max_value=50),
)
def test_a_positive_after_the_newest_negative_is_never_met(inputs, purpose, minutes, sensitivity):
    negatives = [
        t.collected_at for t in inputs.tests if t.result is PregnancyResult.NEGATIVE and t.sensitivity_miu_ml <= 50
    ]
    at = NOW - timedelta(minutes=minutes)
    if negatives and at < max(negatives):
        at = max(negatives)
    positive = PregnancyTest(at, PregnancyResult.POSITIVE, sensitivity)
    status = evaluate_testing(
        PregnancyTestingInputs(
            inputs.risk_category, inputs.menstrual_cycle, inputs.therapy_started_at, inputs.tests + (positive,)
        ),
        PROGRAM,
        NOW,
        purpose,
    )
    assert not status.met


@settings(max_examples=300, deadline=None)
@given(inputs_st, st.sampled_from(list(Purpose)))
def test_met_means_a_recent_negative_exists_and_reasons_match(inputs, purpose):
    status = evaluate_testing(inputs, PROGRAM, NOW, purpose)
    assert status.met == (not status.reasons)
    if status.met:
        counted = [t for t in inputs.tests if t.result is PregnancyResult.NEGATIVE and t.sensitivity_miu_ml <= 50]
        assert counted and NOW - max(t.collected_at for t in counted) <= timedelta(days=29)


@settings(max_examples=200, deadline=None)
@given(inputs_st, st.sampled_from(list(Purpose)))
def test_insensitive_tests_never_change_the_answer(inputs, purpose):
    kept = tuple(t for t in inputs.tests if t.sensitivity_miu_ml <= 50)
    trimmed = PregnancyTestingInputs(inputs.risk_category, inputs.menstrual_cycle, inputs.therapy_started_at, kept)
    assert evaluate_testing(inputs, PROGRAM, NOW, purpose).met == evaluate_testing(trimmed, PROGRAM, NOW, purpose).met
