"""Pregnancy-test gating for females who can get pregnant (R-PREG-1 to R-PREG-4).

``evaluate_testing`` answers, for a patient at ``now``: does the testing
requirement hold for an authorization or for a dispense, which reasons fail,
and when the next test is due. It reads only the snapshot it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum

from .calendar import days_between, instant_text, last_valid_day, local_date, valid_until
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
    """``next_test_due_at`` is the instant the newest negative test stops counting
    (``now`` when none counts); ``next_test_due_on`` the last calendar day (program
    zone) on which the next test must be collected to keep testing current."""

    state: PregnancyTestingState
    met: bool
    reasons: tuple[Reason, ...]
    next_test_due_at: datetime | None
    interval_days: int | None
    next_test_due_on: date | None = None


def _who(purpose: Purpose) -> str:
    """Who records a pregnancy test: the caller at authorization, the prescriber for the pharmacy."""
    return "Record" if purpose is Purpose.AUTHORIZATION else "The prescriber must record"


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
            "Do not start or continue therapy. The pregnancy is reported to the prescriber and the program; only a "
            "program administrator can reinstate the patient after review.",
        )
        return PregnancyTestingStatus(PregnancyTestingState.POSITIVE, False, (reason,), None, interval)

    today = local_date(now, tz)
    reasons: list[Reason] = []
    if purpose is Purpose.AUTHORIZATION and inputs.therapy_started_at is None:
        reasons = _initial_test_reasons(negatives, program, now)
    elif newest_negative is None:
        reasons = [
            Reason(
                Code.PREGNANCY_TEST_MISSING,
                Rule.R_PREG_3,
                "No negative pregnancy test is on record.",
                f"{_who(purpose)} a negative pregnancy test collected on or after "
                f"{(today - timedelta(days=interval)).isoformat()} (a test is required every {interval} days now), "
                "then ask again.",
            )
        ]
    elif days_between(newest_negative.collected_at, now, tz) > interval:
        age = days_between(newest_negative.collected_at, now, tz)
        reasons = [
            Reason(
                Code.PREGNANCY_TEST_STALE,
                Rule.R_PREG_3,
                f"The newest negative pregnancy test is {age} days old; a test is required every {interval} days now.",
                f"{_who(purpose)} a negative pregnancy test collected on or after "
                f"{(today - timedelta(days=interval)).isoformat()}, then ask again.",
            )
        ]
    met = not reasons
    due_on = last_valid_day(newest_negative.collected_at, interval, tz) if newest_negative and met else today
    return PregnancyTestingStatus(
        PregnancyTestingState.CURRENT if met else PregnancyTestingState.DUE, met, tuple(reasons), due, interval, due_on
    )


@dataclass(frozen=True)
class FirstAuthorizationWindow:
    """R-PREG-1 as dates (program zone), for a patient not yet on therapy.

    ``first_test_on`` is the negative test that counts (or will count) as the
    first of the two, None when there is none: a first test collected on day
    D makes the authorization possible from D + earliest to D + latest days.
    ``authorize_from``/``authorize_until`` is the soonest such window (from
    today on); the second negative test must be collected within
    ``second_test_within_hours`` before the authorization, so from
    ``second_test_from`` (the day before ``authorize_from``, not before today)
    to ``authorize_until``.
    """

    first_test_on: date | None
    authorize_from: date
    authorize_until: date
    second_test_from: date
    second_test_within_hours: int


def first_authorization_window(
    inputs: PregnancyTestingInputs, program: ProgramVersion, now: datetime
) -> FirstAuthorizationWindow | None:
    """R-PREG-1's dates for the patient's first authorization, or None when R-PREG-1
    does not apply (not FRP, therapy started, or the newest test is positive)."""
    now = ensure_utc(now)
    if not inputs.risk_category.is_frp or inputs.therapy_started_at is not None:
        return None
    tests = _usable(inputs.tests, program, now)
    if tests and tests[0].result is PregnancyResult.POSITIVE:
        return None
    return _first_window([t for t in tests if t.result is PregnancyResult.NEGATIVE], program, now)


def _first_window(negatives: list[PregnancyTest], program: ProgramVersion, now: datetime) -> FirstAuthorizationWindow:
    earliest, latest = program.initial_test_1_window_days
    tz = program.tz
    today = local_date(now, tz)
    # A negative test at most `latest` days old counts as the first test today or later;
    # the oldest such test opens the soonest window.
    candidates = sorted(d for d in (local_date(t.collected_at, tz) for t in negatives) if (today - d).days <= latest)
    first = candidates[0] if candidates else None
    base = first if first is not None else today
    authorize_from = max(today, base + timedelta(days=earliest))
    authorize_until = base + timedelta(days=latest)
    return FirstAuthorizationWindow(
        first_test_on=first,
        authorize_from=authorize_from,
        authorize_until=authorize_until,
        second_test_from=max(today, authorize_from - timedelta(days=1)),
        second_test_within_hours=program.initial_test_2_window_hours,
    )


def _initial_test_reasons(negatives: list[PregnancyTest], program: ProgramVersion, now: datetime) -> list[Reason]:
    """R-PREG-1: the two negative tests before the first authorization."""
    earliest, latest = program.initial_test_1_window_days
    hours = program.initial_test_2_window_hours
    window = _first_window(negatives, program, now)
    if not negatives:
        return [
            Reason(
                Code.PREGNANCY_TEST_MISSING,
                Rule.R_PREG_1,
                "Two negative pregnancy tests are required before the first authorization; none is on record.",
                f"Record a first negative pregnancy test; collected today ({local_date(now, program.tz).isoformat()}), "
                f"it allows the authorization from {window.authorize_from.isoformat()} to "
                f"{window.authorize_until.isoformat()}, with a second negative test collected within the {hours} "
                "hours before it.",
            )
        ]
    today = local_date(now, program.tz)
    first_ok = any(earliest <= (today - local_date(t.collected_at, program.tz)).days <= latest for t in negatives)
    second_ok = any(now - timedelta(hours=hours) <= t.collected_at <= now for t in negatives)
    reasons = []
    if not first_ok:
        if window.first_test_on is not None:
            step = (
                f"The negative test of {window.first_test_on.isoformat()} counts as the first test from "
                f"{window.authorize_from.isoformat()} to {window.authorize_until.isoformat()}: request the "
                "authorization in that window."
            )
        else:
            step = (
                "No negative test is recent enough to count as the first. Record a new first negative test; "
                f"collected today, it allows the authorization from {window.authorize_from.isoformat()} to "
                f"{window.authorize_until.isoformat()}."
            )
        reasons.append(
            Reason(
                Code.PREGNANCY_TEST_OUT_OF_WINDOW,
                Rule.R_PREG_1,
                f"The first negative test must be collected {earliest} to {latest} days before the authorization date.",
                f"For an authorization today it must be collected between "
                f"{(today - timedelta(days=latest)).isoformat()} and {(today - timedelta(days=earliest)).isoformat()}. "
                + step,
            )
        )
    if not second_ok:
        reasons.append(
            Reason(
                Code.PREGNANCY_TEST_OUT_OF_WINDOW,
                Rule.R_PREG_1,
                f"The second negative test must be collected within the {hours} hours before the authorization.",
                f"Record a second negative pregnancy test and request the authorization within {hours} hours of "
                f"its collection (a test collected now counts until {instant_text(now + timedelta(hours=hours))}), "
                f"between {window.authorize_from.isoformat()} and {window.authorize_until.isoformat()} while the "
                "first test is in its window.",
            )
        )
    return reasons
