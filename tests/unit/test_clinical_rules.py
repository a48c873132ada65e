"""CLINICAL_RULES.md: one table-driven test per rule ID, with cases on both sides of every
threshold; the cycle position across holds; stale and missing labs; replay of decisions
with warnings; and the property tests (a newer normal CBC never adds a hematologic critical
warning; warnings never turn an approval into a denial except through R-CYCLE-3 or R-ACK-1).

``NOW`` is 2026-06-15 12:00 UTC, the program zone UTC, the parameters those of the program
version in force (config/programs).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.clinical_fixtures import (
    ANC,
    CRCL,
    HGB,
    PLT,
    SERUM,
    URINE,
    ack,
    course,
    facts,
    held,
    lab,
    normal_cbc,
)
from tests.unit.test_decision_rules import NOW, PROGRAM, auth_ctx, dispense_ctx
from workflows import snapshots
from workflows.advisories import ClinicalFacts, ClinicalRequest, LabValue, Severity, advise
from workflows.authorizations import AuthorizationContext, decide_authorization
from workflows.clinical_params import Regimen
from workflows.courses import CourseStatus, cycle_position, dosing_days
from workflows.dispenses import DispenseContext, decide_dispense
from workflows.replay import compare, replay, summary
from workflows.rules import Code, Rule

DAY = timedelta(days=1)
PARAMS = PROGRAM.clinical
assert PARAMS is not None
TZ = PROGRAM.tz
REQUEST = ClinicalRequest(days_supply=28, quantity=21)


def warnings_of(f: ClinicalFacts, request: ClinicalRequest | None = REQUEST, params=PARAMS):
    return advise(f, request, params, TZ, NOW, "prescriber").warnings


def found(f: ClinicalFacts, rule: Rule, **kw):
    """(code, severity) of every warning of ``rule``."""
    return {(w.code, w.severity.value) for w in warnings_of(f, **kw) if w.rule is rule}


def reasons_of(f: ClinicalFacts):
    return {(r.code, r.rule) for r in advise(f, REQUEST, PARAMS, TZ, NOW, "pharmacist").reasons}


def cbc(anc: float = 2.5, platelets: float = 200.0, hgb: float = 12.5, at=NOW - DAY):
    return (lab(ANC, anc, at), lab(PLT, platelets, at), lab(HGB, hgb, at))


NONE: set[tuple[str, str]] = set()


# -- R-CBC-1: the CBC window --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labs, c, expected",
    [
        pytest.param(cbc(at=NOW - 7 * DAY), course(), NONE, id="cycle1-7-days-old"),
        pytest.param(cbc(at=NOW - 8 * DAY), course(), {("CBC_STALE", "caution")}, id="cycle1-8-days-old"),
        pytest.param((lab(PLT, 200.0),), course(), {("CBC_MISSING", "caution")}, id="no-anc"),
        pytest.param((), course(), {("CBC_MISSING", "caution")}, id="no-cbc"),
        pytest.param(cbc(at=NOW - 28 * DAY), course(start_date=(NOW - 70 * DAY).date()), NONE, id="cycle3-28-days-old"),
        pytest.param(
            cbc(at=NOW - 29 * DAY),
            course(start_date=(NOW - 70 * DAY).date()),
            {("CBC_STALE", "caution")},
            id="cycle3-29-days-old",
        ),
        pytest.param(
            cbc(at=NOW - 8 * DAY),
            course(
                start_date=(NOW - 70 * DAY).date(),
                status=CourseStatus.ON_HOLD,
                holds=(held(NOW - 2 * DAY),),
            ),
            {("CBC_STALE", "caution")},
            id="on-hold-8-days-old",
        ),
    ],
)
def test_r_cbc_1(labs, c, expected):
    assert found(facts(c, labs), Rule.R_CBC_1) == expected


def test_r_cbc_1_counts_a_missing_anc_and_missing_platelets_separately():
    assert len([w for w in warnings_of(facts(labs=())) if w.rule is Rule.R_CBC_1]) == 2


# -- R-CBC-2 / R-CBC-3: hold thresholds ---------------------------------------------------------------


@pytest.mark.parametrize(
    "platelets, expected",
    [
        pytest.param(29.9, {("PLATELETS_BELOW_HOLD_THRESHOLD", "critical")}, id="29.9"),
        pytest.param(30.0, NONE, id="30.0"),
    ],
)
def test_r_cbc_2(platelets, expected):
    assert found(facts(labs=cbc(platelets=platelets)), Rule.R_CBC_2) == expected


@pytest.mark.parametrize(
    "anc, regimen, expected",
    [
        pytest.param(0.99, Regimen.COMBINATION, {("ANC_BELOW_HOLD_THRESHOLD", "critical")}, id="0.99-combination"),
        pytest.param(1.00, Regimen.COMBINATION, NONE, id="1.00-combination"),
        pytest.param(0.99, Regimen.MAINTENANCE, {("ANC_BELOW_HOLD_THRESHOLD", "critical")}, id="0.99-maintenance"),
        pytest.param(1.00, Regimen.MAINTENANCE, NONE, id="1.00-maintenance"),
    ],
)
def test_r_cbc_3(anc, regimen, expected):
    c = course(regimen=regimen, days_on=28 if regimen is Regimen.MAINTENANCE else 21, dose_mg=10.0)
    assert found(facts(c, cbc(anc=anc), strength=10.0), Rule.R_CBC_3) == expected


def test_r_cbc_3_maintenance_threshold_is_its_own_parameter():
    schedules = dict(PARAMS.regimens)
    schedules[Regimen.MAINTENANCE] = replace(schedules[Regimen.MAINTENANCE], anc_hold_below=0.5)
    params = replace(PARAMS, regimens=tuple(schedules.items()))
    maintenance = course(regimen=Regimen.MAINTENANCE, days_on=28, dose_mg=10.0)
    assert found(facts(maintenance, cbc(anc=0.7), strength=10.0), Rule.R_CBC_3, params=params) == NONE
    assert found(facts(course(), cbc(anc=0.7)), Rule.R_CBC_3, params=params) != NONE


# -- R-CBC-4: CTCAE v5 grades --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labs, expected",
    [
        pytest.param(cbc(anc=1.0), NONE, id="anc-1.0-grade-2-or-less"),
        pytest.param(cbc(anc=0.99), {("CTCAE_GRADE_3_NEUTROPENIA", "caution")}, id="anc-0.99-grade-3"),
        pytest.param(cbc(anc=0.5), {("CTCAE_GRADE_3_NEUTROPENIA", "caution")}, id="anc-0.5-grade-3"),
        pytest.param(cbc(anc=0.49), {("CTCAE_GRADE_4_NEUTROPENIA", "caution")}, id="anc-0.49-grade-4"),
        pytest.param(cbc(platelets=50.0), NONE, id="plt-50-grade-2-or-less"),
        pytest.param(cbc(platelets=49.9), {("CTCAE_GRADE_3_THROMBOCYTOPENIA", "caution")}, id="plt-49.9-grade-3"),
        pytest.param(cbc(platelets=25.0), {("CTCAE_GRADE_3_THROMBOCYTOPENIA", "caution")}, id="plt-25-grade-3"),
        pytest.param(cbc(platelets=24.9), {("CTCAE_GRADE_4_THROMBOCYTOPENIA", "caution")}, id="plt-24.9-grade-4"),
        pytest.param(cbc(hgb=8.0), NONE, id="hgb-8.0"),
        pytest.param(cbc(hgb=7.9), {("CTCAE_GRADE_3_ANEMIA", "caution")}, id="hgb-7.9-grade-3"),
    ],
)
def test_r_cbc_4(labs, expected):
    assert found(facts(labs=labs), Rule.R_CBC_4) == expected


# -- R-DOSE-1 / R-DOSE-2 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dose, strength, warns",
    [
        pytest.param(25.0, 25.0, False, id="agree"),
        pytest.param(25.0, 20.0, True, id="disagree"),
        pytest.param(12.0, 12.0, True, id="course-dose-not-a-strength"),
        pytest.param(2.5, 2.5, False, id="2.5-mg"),
        pytest.param(25.0, None, False, id="no-strength-asked"),
    ],
)
def test_r_dose_1(dose, strength, warns):
    result = found(facts(course(dose_mg=dose), strength=strength), Rule.R_DOSE_1)
    assert result == ({("DOSE_STRENGTH_MISMATCH", "caution")} if warns else NONE)


@pytest.mark.parametrize(
    "regimen, dose, warns",
    [
        pytest.param(Regimen.COMBINATION, 25.0, False, id="combination-25"),
        pytest.param(Regimen.COMBINATION, 30.0, True, id="combination-30"),
        pytest.param(Regimen.MAINTENANCE, 15.0, False, id="maintenance-15"),
        pytest.param(Regimen.MAINTENANCE, 20.0, True, id="maintenance-20"),
    ],
)
def test_r_dose_2(regimen, dose, warns):
    c = course(regimen=regimen, dose_mg=dose)
    assert found(facts(c, strength=dose), Rule.R_DOSE_2) == ({("DOSE_ABOVE_MAXIMUM", "critical")} if warns else NONE)


# -- R-RENAL-1 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "clearance, dose, every, dialysis, warns",
    [
        pytest.param(60.0, 25.0, 1, False, False, id="60-no-band"),
        pytest.param(59.0, 25.0, 1, False, True, id="59-moderate-25mg"),
        pytest.param(59.0, 10.0, 1, False, False, id="59-moderate-10mg"),
        pytest.param(30.0, 15.0, 1, False, True, id="30-moderate-15mg"),
        pytest.param(30.0, 10.0, 1, False, False, id="30-moderate-10mg"),
        pytest.param(29.0, 10.0, 1, False, True, id="29-severe-daily"),
        pytest.param(29.0, 15.0, 2, False, False, id="29-severe-15mg-every-48h"),
        pytest.param(29.0, 5.0, 1, True, False, id="29-dialysis-5mg"),
        pytest.param(29.0, 10.0, 1, True, True, id="29-dialysis-10mg"),
    ],
)
def test_r_renal_1(clearance, dose, every, dialysis, warns):
    c = course(dose_mg=dose, dose_every_days=every, on_dialysis=dialysis)
    f = facts(c, normal_cbc() + (lab(CRCL, clearance),), strength=dose)
    assert found(f, Rule.R_RENAL_1) == ({("DOSE_ABOVE_RENAL_BAND", "caution")} if warns else NONE)


def test_r_renal_1_without_a_clearance_says_nothing():
    assert found(facts(), Rule.R_RENAL_1) == NONE


# -- R-CYCLE-1: cycle number and day across holds -------------------------------------------------------


@pytest.mark.parametrize(
    "start_days_ago, holds, status, number, day",
    [
        pytest.param(0, (), CourseStatus.ACTIVE, 1, 1, id="start-day"),
        pytest.param(27, (), CourseStatus.ACTIVE, 1, 28, id="last-day-of-cycle-1"),
        pytest.param(28, (), CourseStatus.ACTIVE, 2, 1, id="first-day-of-cycle-2"),
        pytest.param(30, ((20, 10),), CourseStatus.ACTIVE, 1, 21, id="10-held-days-do-not-count"),
        pytest.param(30, ((20, 10), (5, 3)), CourseStatus.ACTIVE, 1, 19, id="two-holds"),
        pytest.param(30, ((5, None),), CourseStatus.ON_HOLD, 1, 26, id="frozen-while-held"),
        pytest.param(60, ((5, None),), CourseStatus.ON_HOLD, 2, 28, id="frozen-in-cycle-2"),
    ],
)
def test_r_cycle_1_position_across_holds(start_days_ago, holds, status, number, day):
    periods = tuple(held(NOW - a * DAY, None if b is None else NOW - b * DAY) for a, b in holds)
    c = course(start_date=(NOW - start_days_ago * DAY).date(), holds=periods, status=status)
    position = cycle_position(c, NOW, TZ)
    assert (position.number, position.day) == (number, day)
    (info,) = [w for w in warnings_of(facts(c)) if w.rule is Rule.R_CYCLE_1]
    assert info.severity is Severity.INFO and info.message.startswith(f"Cycle {number}, day {day} of 28")


def test_r_cycle_1_before_the_start_date():
    c = course(start_date=(NOW + 3 * DAY).date())
    assert not cycle_position(c, NOW, TZ).started
    assert "starts on" in next(w.message for w in warnings_of(facts(c)) if w.rule is Rule.R_CYCLE_1)


# -- R-CYCLE-2: capsules per dosing day -----------------------------------------------------------------


@pytest.mark.parametrize(
    "c, days_supply, quantity, warns",
    [
        pytest.param(course(start_date=NOW.date()), 28, 21, False, id="combination-day-1-21"),
        pytest.param(course(start_date=NOW.date()), 28, 28, True, id="combination-day-1-28"),
        pytest.param(course(start_date=(NOW - 14 * DAY).date()), 28, 21, False, id="combination-day-15-21"),
        pytest.param(course(start_date=(NOW - 21 * DAY).date()), 14, 7, False, id="combination-rest-week-then-7"),
        pytest.param(course(regimen=Regimen.MAINTENANCE, days_on=28, dose_mg=10.0), 28, 28, False, id="maintenance-28"),
        pytest.param(course(dose_every_days=2, dose_mg=15.0, start_date=NOW.date()), 28, 11, False, id="every-48h"),
    ],
)
def test_r_cycle_2(c, days_supply, quantity, warns):
    request = ClinicalRequest(days_supply, quantity)
    result = found(facts(c, strength=c.dose_mg), Rule.R_CYCLE_2, request=request)
    assert result == ({("QUANTITY_DOSING_DAYS_MISMATCH", "caution")} if warns else NONE)


def test_r_cycle_2_counts_dosing_days_across_a_cycle_boundary():
    assert dosing_days(course(start_date=(NOW - 3 * DAY).date()), NOW, TZ, 28) == 21
    assert dosing_days(course(start_date=(NOW - 25 * DAY).date()), NOW, TZ, 7) == 4


# -- R-CYCLE-3 and R-ACK-1: the two refusals ------------------------------------------------------------


@pytest.mark.parametrize(
    "status, refuses",
    [
        pytest.param(CourseStatus.ACTIVE, False, id="active"),
        pytest.param(CourseStatus.ON_HOLD, True, id="on-hold"),
        pytest.param(CourseStatus.STOPPED, True, id="stopped"),
    ],
)
def test_r_cycle_3(status, refuses):
    c = course(status=status, status_reason_code=None if status is CourseStatus.ACTIVE else "hematologic")
    assert reasons_of(facts(c)) == ({(Code.TREATMENT_ON_HOLD, Rule.R_CYCLE_3)} if refuses else set())


@pytest.mark.parametrize(
    "labs, acks, refuses",
    [
        pytest.param(cbc(platelets=25.0), (), {Rule.R_CBC_2}, id="platelets-unacknowledged"),
        pytest.param(cbc(platelets=25.0), (ack(Rule.R_CBC_2),), set(), id="platelets-acknowledged"),
        pytest.param(cbc(platelets=25.0), (ack(Rule.R_CBC_3),), {Rule.R_CBC_2}, id="other-rule-acknowledged"),
        pytest.param(cbc(platelets=25.0), (ack(Rule.R_CBC_2, "  "),), {Rule.R_CBC_2}, id="blank-reason"),
        pytest.param(cbc(platelets=25.0, anc=0.5), (ack(Rule.R_CBC_2),), {Rule.R_CBC_3}, id="one-of-two"),
        pytest.param(cbc(platelets=25.0, anc=0.5), (), {Rule.R_CBC_2, Rule.R_CBC_3}, id="one-reason-per-rule"),
        pytest.param(cbc(platelets=30.0), (), set(), id="no-critical"),
    ],
)
def test_r_ack_1(labs, acks, refuses):
    f = facts(labs=labs, acks=acks)
    result = advise(f, REQUEST, PARAMS, TZ, NOW, "pharmacist").reasons
    assert {r.code for r in result} <= {Code.CLINICAL_ALERT_UNACKNOWLEDGED}
    assert {r.rule for r in result} <= {Rule.R_ACK_1}
    assert {Rule(r.message.split()[3]) for r in result} == refuses
    assert len(result) == len(refuses)


def test_r_ack_1_covers_every_critical_rule():
    """R-DOSE-2 is critical too: it needs an acknowledgement like the hematologic ones."""
    f = facts(course(dose_mg=30.0), strength=30.0)
    assert reasons_of(f) == {(Code.CLINICAL_ALERT_UNACKNOWLEDGED, Rule.R_ACK_1)}
    assert reasons_of(replace(f, acknowledgements=(ack(Rule.R_DOSE_2),))) == set()


# -- R-VTE-1 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prophylaxis, warns", [pytest.param(None, True, id="none"), pytest.param("apixaban", False, id="recorded")]
)
def test_r_vte_1(prophylaxis, warns):
    result = found(facts(course(thromboprophylaxis=prophylaxis)), Rule.R_VTE_1)
    assert result == ({("NO_THROMBOPROPHYLAXIS", "info")} if warns else NONE)


# -- R-RESP-1 / R-RESP-2: M-protein trend ------------------------------------------------------------------


def series(code: str, *values: float) -> tuple[LabValue, ...]:
    """The first value is the baseline (before the course starts, 10 days ago); then weekly."""
    start = NOW - 12 * DAY
    return tuple(lab(code, v, start + i * 3 * DAY) for i, v in enumerate(values))


@pytest.mark.parametrize(
    "values, expected",
    [
        pytest.param((2.0, 1.52), NONE, id="-24%"),
        pytest.param((2.0, 1.5), {("RESPONSE_MR", "info")}, id="-25%-MR"),
        pytest.param((2.0, 1.02), {("RESPONSE_MR", "info")}, id="-49%-MR"),
        pytest.param((2.0, 1.0), {("RESPONSE_PR", "info")}, id="-50%-PR"),
        pytest.param((2.0, 0.22), {("RESPONSE_PR", "info")}, id="-89%-PR"),
        pytest.param((2.0, 0.2), {("RESPONSE_VGPR", "info")}, id="-90%-VGPR"),
        pytest.param((2.0,), NONE, id="baseline-only"),
    ],
)
def test_r_resp_1(values, expected):
    assert found(facts(labs=normal_cbc() + series(SERUM, *values)), Rule.R_RESP_1) == expected


def test_r_resp_1_is_unconfirmed_until_two_consecutive_results_agree():
    one = next(w for w in warnings_of(facts(labs=series(SERUM, 2.0, 0.9))) if w.rule is Rule.R_RESP_1)
    two = next(w for w in warnings_of(facts(labs=series(SERUM, 2.0, 0.95, 0.9))) if w.rule is Rule.R_RESP_1)
    assert "unconfirmed" in one.message and "unconfirmed" not in two.message and "confirmed" in two.message
    assert [e.value for e in one.evidence] == [2.0, 0.9]


@pytest.mark.parametrize(
    "code, values, warns",
    [
        pytest.param(SERUM, (3.0, 2.0, 2.48), False, id="serum+24%-0.48"),
        pytest.param(SERUM, (3.0, 2.0, 2.5), True, id="serum+25%-0.50"),
        pytest.param(SERUM, (3.0, 1.0, 1.49), False, id="serum+49%-0.49-absolute-short"),
        pytest.param(SERUM, (3.0, 1.0, 1.5), True, id="serum+50%-0.50"),
        pytest.param(SERUM, (5.0, 4.0, 4.96), False, id="serum+24%-0.96-relative-short"),
        pytest.param(SERUM, (5.0, 4.0, 5.0), True, id="serum+25%-1.0"),
        pytest.param(URINE, (900.0, 800.0, 999.0), False, id="urine+199mg"),
        pytest.param(URINE, (900.0, 800.0, 1000.0), True, id="urine+200mg-25%"),
    ],
)
def test_r_resp_2(code, values, warns):
    result = found(facts(labs=normal_cbc() + series(code, *values)), Rule.R_RESP_2)
    assert result == ({("POSSIBLE_PROGRESSION", "caution")} if warns else NONE)


def test_r_resp_2_progression_is_unconfirmed_until_repeated():
    once = next(w for w in warnings_of(facts(labs=series(SERUM, 3.0, 2.0, 2.6))) if w.rule is Rule.R_RESP_2)
    twice = next(w for w in warnings_of(facts(labs=series(SERUM, 3.0, 2.0, 2.6, 2.7))) if w.rule is Rule.R_RESP_2)
    assert "unconfirmed" in once.message and "unconfirmed" not in twice.message


# -- decisions: warnings in the Decision, snapshot and replay ----------------------------------------------


def with_clinical(ctx, f):
    return replace(ctx, clinical=f)


def test_warnings_join_the_decision_and_replay_from_the_snapshot():
    f = facts(labs=cbc(platelets=25.0), acks=(ack(Rule.R_CBC_2),), strength=10.0)
    for ctx, cls, decide in (
        (with_clinical(auth_ctx(), f), AuthorizationContext, decide_authorization),
        (with_clinical(dispense_ctx(), f), DispenseContext, decide_dispense),
    ):
        decision = decide(ctx, PROGRAM, NOW)
        assert decision.approved and any(w.rule is Rule.R_CBC_2 for w in decision.warnings)
        stored = snapshots.dump(ctx)
        assert snapshots.dump(snapshots.load(cls, stored)) == stored
        kind = "authorization" if cls is AuthorizationContext else "dispense"
        again = replay(kind, stored, PROGRAM, NOW)
        recorded = summary(
            decision.outcome,
            [r.as_dict() for r in decision.reasons],
            decision.valid_until,
            [w.summary() for w in decision.warnings],
        )
        assert compare(recorded, again).matches
        # A recorded warning that the replay no longer gives is a mismatch.
        assert not compare({**recorded, "warnings": recorded["warnings"][1:]}, again).matches


def test_a_snapshot_stored_before_the_clinical_layer_replays_without_warnings():
    stored = snapshots.dump(auth_ctx())
    del stored["clinical"]
    decision = replay("authorization", stored, PROGRAM, NOW)
    assert decision.approved and decision.warnings == ()


# -- properties ----------------------------------------------------------------------------------------------

HEMATOLOGIC_CRITICAL = {Rule.R_CBC_2, Rule.R_CBC_3}
values = st.floats(min_value=0.0, max_value=400.0, allow_nan=False)
ages = st.integers(min_value=1, max_value=60)
lab_values = st.builds(
    lambda code, v, age: lab(code, v, NOW - age * DAY),
    st.sampled_from([ANC, PLT, HGB, SERUM, URINE, CRCL]),
    values,
    ages,
)
courses = st.builds(
    lambda regimen, dose, start, status: course(
        regimen=regimen,
        dose_mg=dose,
        start_date=(NOW - start * DAY).date(),
        status=status,
        holds=(held(NOW - DAY),) if status is CourseStatus.ON_HOLD else (),
        status_reason_code=None if status is CourseStatus.ACTIVE else "other",
    ),
    st.sampled_from(list(Regimen)),
    st.sampled_from([2.5, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]),
    st.integers(min_value=-5, max_value=200),
    st.sampled_from(list(CourseStatus)),
)
normal = st.builds(
    lambda anc, plt, hgb: (anc, plt, hgb),
    st.floats(min_value=1.0, max_value=20.0),
    st.floats(min_value=30.0, max_value=900.0),
    st.floats(min_value=8.0, max_value=20.0),
)


@settings(max_examples=200, deadline=None)
@given(c=courses, labs=st.lists(lab_values, max_size=12), cbc_values=normal)
def test_a_newer_normal_cbc_never_adds_a_hematologic_critical_warning(c, labs, cbc_values):
    before = facts(c, tuple(labs))
    anc, plt, hgb = cbc_values
    newer = before.labs + (lab(ANC, anc, NOW), lab(PLT, plt, NOW), lab(HGB, hgb, NOW))
    after = replace(before, labs=newer)

    def critical(f):
        return {w.rule for w in warnings_of(f) if w.severity is Severity.CRITICAL and w.rule in HEMATOLOGIC_CRITICAL}

    assert critical(after) <= critical(before)
    assert critical(after) == set()


@settings(max_examples=200, deadline=None)
@given(
    c=courses,
    labs=st.lists(lab_values, max_size=12),
    acked=st.lists(st.sampled_from(list(Rule)), max_size=4),
    kind=st.sampled_from(["authorization", "dispense"]),
)
def test_warnings_never_deny_an_approval_except_through_r_cycle_3_or_r_ack_1(c, labs, acked, kind):
    ctx, decide = (auth_ctx(), decide_authorization) if kind == "authorization" else (dispense_ctx(), decide_dispense)
    assert decide(ctx, PROGRAM, NOW).approved
    f = facts(c, tuple(labs), tuple(ack(r) for r in acked), strength=10.0)
    decision = decide(with_clinical(ctx, f), PROGRAM, NOW)
    assert {(r.code, r.rule) for r in decision.reasons} <= {
        (Code.TREATMENT_ON_HOLD, Rule.R_CYCLE_3),
        (Code.CLINICAL_ALERT_UNACKNOWLEDGED, Rule.R_ACK_1),
    }
    unacknowledged = {w.rule for w in decision.warnings if w.severity is Severity.CRITICAL} - set(acked)
    assert decision.approved is (c.status is CourseStatus.ACTIVE and not unacknowledged)


@pytest.mark.parametrize(
    "weight, age, female, creatinine, warns",
    [
        pytest.param(60.0, 60, False, 1.0, False, id="male-66.7-mL/min"),
        pytest.param(60.0, 60, True, 1.0, True, id="female-56.7-mL/min"),
        pytest.param(70.0, 70, False, 1.5, True, id="male-45.4-mL/min"),
        pytest.param(None, 70, False, 3.0, False, id="weight-unknown"),
    ],
)
def test_r_renal_1_estimates_the_clearance_from_creatinine_when_weight_is_known(weight, age, female, creatinine, warns):
    f = replace(
        facts(course(weight_kg=weight), normal_cbc() + (lab("2160-0", creatinine),)),
        age_years=age,
        female=female,
    )
    result = warnings_of(f)
    renal = [w for w in result if w.rule is Rule.R_RENAL_1]
    assert bool(renal) is warns
    if warns:
        assert "Cockcroft-Gault" in renal[0].message and renal[0].evidence[0].loinc == "2160-0"


def test_r_renal_1_a_measured_clearance_wins_over_the_estimate():
    f = replace(
        facts(course(weight_kg=70.0), normal_cbc() + (lab("2160-0", 1.5), lab(CRCL, 80.0))),
        age_years=70,
        female=False,
    )
    assert found(f, Rule.R_RENAL_1) == NONE


def test_a_snapshot_dumps_as_dataclasses_asdict_would():
    """``snapshots.dump`` skips ``asdict``'s deep copies; the digested JSON is unchanged."""
    import dataclasses
    import json

    from workflows.audit import canonical_json

    f = facts(labs=cbc(platelets=25.0), acks=(ack(Rule.R_CBC_2),), strength=10.0)
    for ctx in (with_clinical(auth_ctx(), f), with_clinical(dispense_ctx(), f), auth_ctx(), dispense_ctx()):
        assert snapshots.dump(ctx) == json.loads(canonical_json(dataclasses.asdict(ctx)))
        assert canonical_json(snapshots.dump(ctx)) == canonical_json(dataclasses.asdict(ctx))
