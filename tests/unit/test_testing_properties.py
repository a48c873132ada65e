"""Hypothesis properties of the pregnancy-testing function (R-PREG-1, R-PREG-3, R-PREG-4)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
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


@settings(max_examples=400, deadline=None)
@given(
    inputs_st,
    st.sampled_from(list(Purpose)),
    offsets.filter(lambda m: m < 60 * 24 * 30),
    st.integers(min_value=1, max_value=50),
)
def test_a_newer_negative_never_turns_met_into_not_met(inputs, purpose, minutes, sensitivity):
    before = evaluate_testing(inputs, PROGRAM, NOW, purpose)
    newest = max((t.collected_at for t in inputs.tests), default=NOW - timedelta(days=61))
    at = max(newest, NOW - timedelta(minutes=minutes))
    added = PregnancyTestingInputs(
        inputs.risk_category,
        inputs.menstrual_cycle,
        inputs.therapy_started_at,
        inputs.tests + (PregnancyTest(at, PregnancyResult.NEGATIVE, sensitivity),),
    )
    after = evaluate_testing(added, PROGRAM, NOW, purpose)
    if before.met:
        assert after.met


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
