"""Pregnancy-test gating for females who can get pregnant (R-PREG-1 to R-PREG-4).

``evaluate_testing`` answers, for a patient at ``now``: does the testing
requirement hold for an authorization or for a dispense, which reasons fail,
and when the next test is due. It reads only the snapshot it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from .calendar import days_between, local_date, valid_until
from .clock import ensure_utc
from .patients import MenstrualCycle, RiskCategory
from .program import ProgramVersion
from .reasons import Reason
from .rules import Code, Rule


class PregnancyResult(str, Enum):
    NEGATIVE = "negative"
    POSITIVE = "positive"


class Purpose(str, Enum):
    AUTHORIZATION = "authorization"
    DISPENSE = "dispense"


class PregnancyTestingState(str, Enum):
    NOT_REQUIRED = "not_required"
    CURRENT = "current"
    DUE = "due"
    POSITIVE = "positive"


@dataclass(frozen=True)
class PregnancyTest:
    collected_at: datetime
    result: PregnancyResult
    sensitivity_miu_ml: int


@dataclass(frozen=True)
class PregnancyTestingInputs:
    """What the testing rules read about one patient."""

    risk_category: RiskCategory
    menstrual_cycle: MenstrualCycle | None
    therapy_started_at: datetime | None
    tests: tuple[PregnancyTest, ...]


@dataclass(frozen=True)
class PregnancyTestingStatus:
    state: PregnancyTestingState
    met: bool
    reasons: tuple[Reason, ...]
    next_test_due_at: datetime | None
    interval_days: int | None


def sensitivity_problem(sensitivity_miu_ml: int, program: ProgramVersion) -> str | None:
    """R-PREG-2: a test counts only at ``test_max_sensitivity_miu_ml`` or better (a number at most that)."""
    limit = program.test_max_sensitivity_miu_ml
    if sensitivity_miu_ml > limit:
        return f"A test must detect {limit} mIU/mL or less to count ({Rule.R_PREG_2.value})."
    return None


def monitoring_interval_days(inputs: PregnancyTestingInputs, program: ProgramVersion, now: datetime) -> int:
    """R-PREG-3: the testing interval in force at ``now``.

    Every ``first_phase_interval_days`` during the first ``first_phase_days``
    calendar days of therapy (and before therapy starts), then every
    ``regular_interval_days`` for regular cycles or ``irregular_interval_days``
    for irregular ones. Interruptions do not reset therapy.
    """
    m = program.monitoring
    if (
        inputs.therapy_started_at is None
        or days_between(inputs.therapy_started_at, now, program.tz) < m.first_phase_days
    ):
        return m.first_phase_interval_days
    if inputs.menstrual_cycle is MenstrualCycle.REGULAR:
        return m.regular_interval_days
    # Unknown counts as irregular: the shorter interval is the safe one.
    return m.irregular_interval_days


def _usable(tests: Iterable[PregnancyTest], program: ProgramVersion, now: datetime) -> list[PregnancyTest]:
    """Tests that count at ``now``: collected by then, sensitive enough; newest first.

    On equal collection times a positive sorts first, so it is never hidden.
    """
    usable = [
        t
        for t in tests
        if ensure_utc(t.collected_at) <= now and sensitivity_problem(t.sensitivity_miu_ml, program) is None
    ]
    return sorted(usable, key=lambda t: (t.collected_at, t.result is PregnancyResult.POSITIVE), reverse=True)


def evaluate_testing(
    inputs: PregnancyTestingInputs, program: ProgramVersion, now: datetime, purpose: Purpose
) -> PregnancyTestingStatus:
    """Whether the FRP testing requirement holds at ``now`` for ``purpose``.

    - Not FRP: not required.
    - The newest test is positive: never met (R-PREG-4).
    - Authorization before therapy (no dispense yet), R-PREG-1: a negative
      test collected within ``initial_test_1_window_days`` calendar days
      before the authorization date and a negative test collected within the
      ``initial_test_2_window_hours`` before ``now``.
    - Otherwise, R-PREG-3: the newest negative test no older than the
      interval in force (calendar days).
    """
    now = ensure_utc(now)
    if not inputs.risk_category.is_frp:
        return PregnancyTestingStatus(PregnancyTestingState.NOT_REQUIRED, True, (), None, None)
    tz = program.tz
    interval = monitoring_interval_days(inputs, program, now)
    tests = _usable(inputs.tests, program, now)
    negatives = [t for t in tests if t.result is PregnancyResult.NEGATIVE]
    newest_negative = negatives[0] if negatives else None
    due = valid_until(newest_negative.collected_at, interval, tz) if newest_negative else now

    if tests and tests[0].result is PregnancyResult.POSITIVE:
        reason = Reason(
            Code.PREGNANCY_TEST_POSITIVE,
            Rule.R_PREG_4,
            "The most recent pregnancy test is positive; therapy is halted.",
        )
        return PregnancyTestingStatus(PregnancyTestingState.POSITIVE, False, (reason,), None, interval)

    reasons: list[Reason] = []
    if purpose is Purpose.AUTHORIZATION and inputs.therapy_started_at is None:
        reasons = _initial_test_reasons(negatives, program, now)
    elif newest_negative is None:
        reasons = [Reason(Code.PREGNANCY_TEST_MISSING, Rule.R_PREG_3, "No negative pregnancy test is on record.")]
    elif days_between(newest_negative.collected_at, now, tz) > interval:
        age = days_between(newest_negative.collected_at, now, tz)
        reasons = [
            Reason(
                Code.PREGNANCY_TEST_STALE,
                Rule.R_PREG_3,
                f"The newest negative pregnancy test is {age} days old; a test is required every {interval} days now.",
            )
        ]
    met = not reasons
    return PregnancyTestingStatus(
        PregnancyTestingState.CURRENT if met else PregnancyTestingState.DUE, met, tuple(reasons), due, interval
    )


def _initial_test_reasons(negatives: list[PregnancyTest], program: ProgramVersion, now: datetime) -> list[Reason]:
    """R-PREG-1: the two negative tests before the first authorization."""
    if not negatives:
        return [
            Reason(
                Code.PREGNANCY_TEST_MISSING,
                Rule.R_PREG_1,
                "Two negative pregnancy tests are required before the first authorization; none is on record.",
            )
        ]
    earliest, latest = program.initial_test_1_window_days
    today = local_date(now, program.tz)
    first_ok = any(earliest <= (today - local_date(t.collected_at, program.tz)).days <= latest for t in negatives)
    window = timedelta(hours=program.initial_test_2_window_hours)
    second_ok = any(now - window <= t.collected_at <= now for t in negatives)
    reasons = []
    if not first_ok:
        reasons.append(
            Reason(
                Code.PREGNANCY_TEST_OUT_OF_WINDOW,
                Rule.R_PREG_1,
                f"The first negative test must be collected {earliest} to {latest} days before the authorization date.",
            )
        )
    if not second_ok:
        reasons.append(
            Reason(
                Code.PREGNANCY_TEST_OUT_OF_WINDOW,
                Rule.R_PREG_1,
                f"The second negative test must be collected within the {program.initial_test_2_window_hours} hours "
                "before the authorization.",
            )
        )
    return reasons
