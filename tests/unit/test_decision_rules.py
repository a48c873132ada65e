"""The decision rules of REMS_RULES.md, one table-driven test per rule ID.

Every case starts from an approved baseline snapshot, changes one thing with
``dataclasses.replace``, decides at an explicit ``now`` and checks the outcome
and the exact set of ``(code, rule)`` pairs of the reasons. Pure: no database,
no Flask.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from functools import reduce

import pytest

from config.programs import load_program
from tests.helpers import utc
from workflows.authorizations import (
    AuthorizationContext,
    AuthorizationRequest,
    AuthorizationStatus,
    PrescriberSurvey,
    decide_authorization,
    expires_at,
)
from workflows.decisions import PatientFacts
from workflows.dispenses import (
    AuthorizationFacts,
    Counseling,
    DispenseContext,
    DispenseRequest,
    DispenseStatus,
    PharmacistFacts,
    PharmacyFacts,
    PriorDispense,
    confirmation_expires_at,
    decide_dispense,
    effective_dispense_status,
)
from workflows.identifiers import new_reference_number, normalize_reference_number
from workflows.participants import PharmacyStatus, PrescriberStatus
from workflows.patients import MenstrualCycle, PatientStatus, RiskCategory
from workflows.replay import replay
from workflows.rules import Code
from workflows.snapshots import dump, load
from workflows.testing import PregnancyResult, PregnancyTest

NOW = utc(2026, 6, 15, 12, 0)
PROGRAM = load_program().in_force(NOW)
DAY, HOUR, US = timedelta(days=1), timedelta(hours=1), timedelta(microseconds=1)
FRP, FRP_CHILD = RiskCategory.FRP_ADULT, RiskCategory.FRP_CHILD
FNRP, FNRP_CHILD = RiskCategory.FNRP_ADULT, RiskCategory.FNRP_CHILD
MALE, MALE_CHILD = RiskCategory.MALE_ADULT, RiskCategory.MALE_CHILD
AUTH_NUMBER, PATIENT = "RA-0000A-0000B-0000C", "RP-0001"

OK: frozenset = frozenset()
PRES1 = ("PRESCRIBER_NOT_CERTIFIED", "R-PRES-1")
PRES2 = ("PRESCRIBER_SURVEY_INCOMPLETE", "R-PRES-2")
CONTRA1 = ("PRESCRIBER_SURVEY_INCOMPLETE", "R-CONTRA-1")
CONTRA2 = ("PRESCRIBER_SURVEY_INCOMPLETE", "R-CONTRA-2")
MISMATCH = ("PATIENT_PRESCRIBER_MISMATCH", "R-AUTH-1")
NOT_ELIGIBLE = ("PATIENT_NOT_ELIGIBLE", "R-PAT-2")
SUPPLY = ("DAYS_SUPPLY_EXCEEDED", "R-AUTH-2")
DISP_SUPPLY = ("DAYS_SUPPLY_EXCEEDED", "R-DISP-4")
QUANTITY = ("QUANTITY_EXCEEDED", "R-AUTH-5")
DISP_QUANTITY = ("QUANTITY_EXCEEDED", "R-DISP-6")
EXPIRED = ("AUTHORIZATION_EXPIRED", "R-AUTH-3")
VOIDED = ("AUTHORIZATION_VOIDED", "R-AUTH-3")
USED = ("AUTHORIZATION_ALREADY_USED", "R-DISP-5")
NOT_FOUND = ("AUTHORIZATION_NOT_FOUND", "R-AUTH-4")
WRONG_PATIENT = ("AUTHORIZATION_PATIENT_MISMATCH", "R-AUTH-4")
EARLY = ("EARLY_REFILL", "R-DISP-3")
PHA1 = ("PHARMACY_NOT_CERTIFIED", "R-PHA-1")
PHA2 = ("PHARMACY_CERTIFICATION_EXPIRED", "R-PHA-2")
PHA3 = ("PHARMACIST_NOT_TRAINED", "R-PHA-3")
STALE = ("PREGNANCY_TEST_STALE", "R-PREG-3")
MISSING = ("PREGNANCY_TEST_MISSING", "R-PREG-3")
POSITIVE = ("PREGNANCY_TEST_POSITIVE", "R-PREG-4")
SURVEY = ("PATIENT_SURVEY_OVERDUE", "R-SURV-1")
COUNSEL = ("COUNSELING_INCOMPLETE", "R-COUNSEL-1")


def neg(at, sensitivity=25):
    return PregnancyTest(at, PregnancyResult.NEGATIVE, sensitivity)


def pos(at):
    return PregnancyTest(at, PregnancyResult.POSITIVE, 25)


def patient_facts() -> PatientFacts:
    """An FRP adult, regular cycles, 60 days into therapy, tested 3 days ago."""
    return PatientFacts(
        patient_id="pat-1",
        rems_patient_id=PATIENT,
        prescriber_id="presc-1",
        risk_category=FRP,
        menstrual_cycle=MenstrualCycle.REGULAR,
        status=PatientStatus.ON_THERAPY,
        therapy_started_at=NOW - 60 * DAY,
        tests=(neg(NOW - 3 * DAY),),
    )


def auth_ctx() -> AuthorizationContext:
    """An approved authorization request by the patient's certified prescriber."""
    return AuthorizationContext(
        prescriber_id="presc-1",
        prescriber_status=PrescriberStatus.CERTIFIED,
        patient=patient_facts(),
        last_survey_at=NOW - 5 * DAY,
        request=AuthorizationRequest(
            days_supply=28, quantity=28, strength_mg=10.0, prescriber_survey=PrescriberSurvey(True, True)
        ),
    )


def dispense_ctx() -> DispenseContext:
    """An approved dispense: issued yesterday, previous 28-day supply dispensed 25 days ago."""
    issued = NOW - DAY
    return DispenseContext(
        pharmacy=PharmacyFacts("pharm-1", PharmacyStatus.CERTIFIED, NOW + 365 * DAY),
        pharmacist=PharmacistFacts("user-1", NOW - 100 * DAY),
        request=DispenseRequest(AUTH_NUMBER, PATIENT, days_supply=28, quantity=28, counseling=Counseling(True, True)),
        authorization=AuthorizationFacts(
            AUTH_NUMBER,
            AuthorizationStatus.ISSUED,
            issued,
            expires_at(issued, FRP, PROGRAM),
            PATIENT,
            28,
            None,
            quantity=28,
            confirmation_pharmacy_id=None,
        ),
        patient=patient_facts(),
        prior_dispense=PriorDispense(NOW - 25 * DAY, 28),
    )


def edit(path: str = "", **changes):
    """A mutator: ``replace`` the object at dotted ``path`` of the context ('' = the context itself)."""

    def apply(obj, names):
        if not names:
            return replace(obj, **changes)
        return replace(obj, **{names[0]: apply(getattr(obj, names[0]), names[1:])})

    return lambda ctx: apply(ctx, [n for n in path.split(".") if n])


def both(*mutators):
    return lambda ctx: reduce(lambda c, m: m(c), mutators, ctx)


def category(cat):
    return edit("patient", risk_category=cat)


def with_tests(*tests, started=NOW - 60 * DAY, cycle=MenstrualCycle.REGULAR, **patient):
    return edit("patient", tests=tests, therapy_started_at=started, menstrual_cycle=cycle, **patient)


SAME = edit()
SURVEY_PATH = "request.prescriber_survey"
DECIDERS = {"authorization": (auth_ctx, decide_authorization), "dispense": (dispense_ctx, decide_dispense)}


def decide(kind, mutate=SAME, now=NOW):
    baseline, fn = DECIDERS[kind]
    return fn(mutate(baseline()), PROGRAM, now)


def check(decision, expected):
    """The outcome follows the reasons, and the reasons are exactly ``expected``."""
    assert {(r.code.value, r.rule) for r in decision.reasons} == set(expected)
    assert decision.approved is (not expected)
    assert (decision.valid_until is None) is bool(expected)
    return decision


@pytest.mark.parametrize(
    "cat, mutate, expected",
    [
        pytest.param(FRP, SAME, OK, id="frp-complete"),
        pytest.param(FRP, edit(SURVEY_PATH, counseled_on_risks=False), {PRES2}, id="frp-not-counseled"),
        pytest.param(FRP, edit(SURVEY_PATH, counseled_on_risks=None), {PRES2}, id="frp-counseling-unanswered"),
        pytest.param(FRP, edit(SURVEY_PATH, contraception_confirmed=False), {CONTRA1}, id="frp-contraception-false"),
        pytest.param(
            FRP_CHILD, edit(SURVEY_PATH, contraception_confirmed=None), {CONTRA1}, id="frp-child-contraception-none"
        ),
        pytest.param(
            FRP,
            edit(SURVEY_PATH, counseled_on_risks=None, contraception_confirmed=None),
            {PRES2, CONTRA1},
            id="frp-both-missing",
        ),
        pytest.param(MALE, SAME, OK, id="male-complete"),
        pytest.param(MALE, edit(SURVEY_PATH, contraception_confirmed=None), {CONTRA2}, id="male-condoms-unconfirmed"),
        pytest.param(
            MALE_CHILD, edit(SURVEY_PATH, contraception_confirmed=False), {CONTRA2}, id="male-child-condoms-false"
        ),
        pytest.param(FNRP, edit(SURVEY_PATH, contraception_confirmed=None), OK, id="fnrp-needs-no-contraception"),
        pytest.param(
            FNRP_CHILD, edit(SURVEY_PATH, contraception_confirmed=False), OK, id="fnrp-child-needs-no-contraception"
        ),
        pytest.param(FNRP, edit(SURVEY_PATH, counseled_on_risks=False), {PRES2}, id="fnrp-not-counseled"),
    ],
)
def test_R_PRES_2_prescriber_survey(cat, mutate, expected):
    check(decide("authorization", both(category(cat), mutate)), expected)


INITIAL_TESTS = with_tests(neg(NOW - 12 * DAY), neg(NOW - 2 * HOUR), started=None, status=PatientStatus.ENROLLED)


@pytest.mark.parametrize(
    "mutate, expected, message_part",
    [
        pytest.param(SAME, OK, None, id="on-therapy-eligible"),
        pytest.param(INITIAL_TESTS, OK, None, id="enrolled-eligible"),
        pytest.param(edit(prescriber_status=PrescriberStatus.PENDING), {PRES1}, None, id="prescriber-pending"),
        pytest.param(edit(prescriber_status=PrescriberStatus.SUSPENDED), {PRES1}, None, id="prescriber-suspended"),
        pytest.param(edit(prescriber_status=PrescriberStatus.DECERTIFIED), {PRES1}, None, id="prescriber-decertified"),
        pytest.param(edit(prescriber_id="presc-2"), {MISMATCH}, None, id="another-prescribers-patient"),
        pytest.param(
            both(
                edit(prescriber_id="presc-2", last_survey_at=None),
                edit("patient", status=PatientStatus.HALTED, tests=()),
            ),
            {MISMATCH},
            None,
            id="mismatch-hides-patient-state",
        ),
        pytest.param(
            both(
                edit(prescriber_id="presc-2", prescriber_status=PrescriberStatus.SUSPENDED),
                edit("request", days_supply=29),
            ),
            {MISMATCH, PRES1, SUPPLY},
            None,
            id="mismatch-keeps-non-patient-reasons",
        ),
        pytest.param(edit("patient", status=PatientStatus.HALTED), {NOT_ELIGIBLE}, "halted", id="halted"),
        pytest.param(
            edit("patient", status=PatientStatus.NEEDS_INTERVENTION),
            {NOT_ELIGIBLE},
            "intervention",
            id="needs-intervention",
        ),
        pytest.param(
            edit("patient", status=PatientStatus.DISCONTINUED), {NOT_ELIGIBLE}, "discontinued", id="discontinued"
        ),
    ],
)
def test_R_AUTH_1_prescriber_and_patient_eligibility(mutate, expected, message_part):
    decision = check(decide("authorization", mutate), expected)
    if message_part:
        assert message_part in decision.reasons[0].message


@pytest.mark.parametrize(
    "days, expected", [pytest.param(d, e, id=str(d)) for d, e in [(1, OK), (28, OK), (29, {SUPPLY}), (56, {SUPPLY})]]
)
def test_R_AUTH_2_max_days_supply(days, expected):
    check(decide("authorization", edit("request", days_supply=days, quantity=min(days, 28))), expected)


@pytest.mark.parametrize(
    "days, quantity, expected",
    [
        pytest.param(d, q, e, id=f"{q}-capsules-for-{d}-days")
        for d, q, e in [
            (28, 28, OK),
            (28, 29, {QUANTITY}),
            (28, 21, OK),
            (21, 21, OK),
            (21, 22, {QUANTITY}),
            (1, 1, OK),
            (1, 2, {QUANTITY}),
            (28, 100, {QUANTITY}),
            (29, 29, {SUPPLY}),
            (29, 30, {SUPPLY, QUANTITY}),
        ]
    ],
)
def test_R_AUTH_5_quantity_at_most_one_capsule_per_day_of_supply(days, quantity, expected):
    decision = check(decide("authorization", edit("request", days_supply=days, quantity=quantity)), expected)
    for reason in decision.reasons:
        if reason.rule == "R-AUTH-5":
            assert f"`quantity` to {days * PROGRAM.max_capsules_per_day} or less" in reason.next_step


def test_R_AUTH_5_capsules_per_day_come_from_the_program():
    assert PROGRAM.max_capsules_per_day == 1
    two_a_day = replace(PROGRAM, max_capsules_per_day=2)
    ctx = edit("request", days_supply=21, quantity=42)(auth_ctx())
    assert decide_authorization(ctx, two_a_day, NOW).approved
    assert not decide_authorization(ctx, PROGRAM, NOW).approved


@pytest.mark.parametrize(
    "cat, valid_days, age, expected",
    [
        pytest.param(FRP, 7, 7 * DAY - US, OK, id="frp-7d-minus-1us"),
        pytest.param(FRP, 7, 7 * DAY, {EXPIRED}, id="frp-7d"),
        pytest.param(FRP_CHILD, 7, 7 * DAY, {EXPIRED}, id="frp-child-7d"),
        pytest.param(MALE, 30, 30 * DAY - US, OK, id="male-30d-minus-1us"),
        pytest.param(MALE, 30, 30 * DAY, {EXPIRED}, id="male-30d"),
        pytest.param(MALE_CHILD, 30, 7 * DAY, OK, id="male-child-7d"),
        pytest.param(FNRP, 30, 30 * DAY - US, OK, id="fnrp-30d-minus-1us"),
        pytest.param(FNRP_CHILD, 30, 30 * DAY, {EXPIRED}, id="fnrp-child-30d"),
    ],
)
def test_R_AUTH_3_authorization_validity(cat, valid_days, age, expected):
    issued = NOW - age
    until = expires_at(issued, cat, PROGRAM)
    assert until == issued + timedelta(days=valid_days)
    check(decide("dispense", both(category(cat), edit("authorization", issued_at=issued, expires_at=until))), expected)
    approval = check(decide("authorization", category(cat)), OK)
    assert approval.valid_until == NOW + timedelta(days=valid_days)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        pytest.param(edit(authorization=None, patient=None, prior_dispense=None), {NOT_FOUND}, id="not-found"),
        pytest.param(
            both(
                edit(authorization=None, patient=None, prior_dispense=None),
                edit("request.counseling", checklist_completed=False),
            ),
            {NOT_FOUND, COUNSEL},
            id="not-found-keeps-participant-reasons",
        ),
        pytest.param(
            both(
                edit("request", rems_patient_id="RP-0002"),
                with_tests(started=None, status=PatientStatus.HALTED),
                edit(prior_dispense=PriorDispense(NOW, 28)),
                edit("authorization", status=AuthorizationStatus.VOIDED),
            ),
            {WRONG_PATIENT},
            id="other-patient-reveals-nothing",
        ),
    ],
)
def test_R_AUTH_4_authorization_number_bound_to_patient(mutate, expected):
    check(decide("dispense", mutate), expected)


def test_R_AUTH_4_reference_numbers_are_unguessable_crockford():
    numbers = [new_reference_number("RA") for _ in range(1000)]
    assert len(set(numbers)) == 1000
    group = "[0-9A-HJKMNP-TV-Z]{5}"
    for number in numbers:
        assert re.fullmatch(f"RA-{group}-{group}-{group}", number), number
        assert not set(number[3:]) & set("ILOU")
        assert normalize_reference_number(number) == number


@pytest.mark.parametrize(
    "typed, canonical",
    [
        pytest.param("ra-abcde-01234-fghjk", "RA-ABCDE-01234-FGHJK", id="lower-case"),
        pytest.param("RA-O0o0O-IiLl1-12345", "RA-00000-11111-12345", id="o-i-l-aliases"),
        pytest.param(" RA - 12345 -\t67890\n-ABCDE ", "RA-12345-67890-ABCDE", id="whitespace"),
    ],
)
def test_R_AUTH_4_normalize_reference_number(typed, canonical):
    assert normalize_reference_number(typed) == canonical


@pytest.mark.parametrize(
    "mutate, expected",
    [
        pytest.param(SAME, OK, id="baseline"),
        pytest.param(edit("authorization", status=AuthorizationStatus.VOIDED), {VOIDED}, id="voided"),
        pytest.param(
            edit("authorization", status=AuthorizationStatus.VOIDED, expires_at=NOW - DAY),
            {VOIDED},
            id="voided-and-past-expiry",
        ),
        pytest.param(edit("authorization", status=AuthorizationStatus.DISPENSED), {USED}, id="dispensed"),
        pytest.param(edit("authorization", status=AuthorizationStatus.EXPIRED), {EXPIRED}, id="stored-expired"),
        pytest.param(edit("patient", status=PatientStatus.HALTED), {NOT_ELIGIBLE}, id="patient-halted"),
        pytest.param(
            edit("patient", status=PatientStatus.NEEDS_INTERVENTION), {NOT_ELIGIBLE}, id="patient-needs-intervention"
        ),
        pytest.param(edit("patient", status=PatientStatus.DISCONTINUED), {NOT_ELIGIBLE}, id="patient-discontinued"),
        pytest.param(
            both(with_tests(neg(NOW - DAY), started=None, status=PatientStatus.ENROLLED), edit(prior_dispense=None)),
            OK,
            id="enrolled-first-dispense",
        ),
        pytest.param(both(category(MALE), with_tests()), OK, id="male-without-tests"),
    ],
)
def test_R_DISP_1_dispense_authorization(mutate, expected):
    check(decide("dispense", mutate), expected)


CONFIRMED = AuthorizationStatus.CONFIRMED


@pytest.mark.parametrize(
    "mutate, expected",
    [
        pytest.param(SAME, OK, id="fresh"),
        pytest.param(
            edit("authorization", status=CONFIRMED, confirmation_expires_at=NOW + US),
            {USED},
            id="live-confirmation-holds",
        ),
        pytest.param(
            edit("authorization", confirmation_expires_at=NOW + 23 * HOUR), {USED}, id="live-confirmation-unmirrored"
        ),
        pytest.param(
            edit("authorization", status=CONFIRMED, confirmation_expires_at=NOW), OK, id="lapsed-exactly-now-frees"
        ),
        pytest.param(
            edit("authorization", status=CONFIRMED, confirmation_expires_at=NOW - HOUR),
            OK,
            id="lapsed-an-hour-ago-frees",
        ),
        pytest.param(edit("authorization", status=CONFIRMED, confirmation_expires_at=None), OK, id="reversed-frees"),
        pytest.param(
            edit("authorization", status=CONFIRMED, confirmation_expires_at=NOW, expires_at=NOW),
            {EXPIRED},
            id="lapsed-but-authorization-expired",
        ),
        pytest.param(
            edit("authorization", status=CONFIRMED, confirmation_expires_at=NOW + HOUR, expires_at=NOW - HOUR),
            {USED},
            id="live-confirmation-outlasting-authorization",
        ),
    ],
)
def test_R_DISP_2_confirmation_window(mutate, expected):
    decision = check(decide("dispense", mutate), expected)
    if not expected:
        assert decision.valid_until == NOW + timedelta(hours=24)


@pytest.mark.parametrize(
    "status, offset, effective",
    [
        pytest.param(DispenseStatus.CONFIRMED, -US, DispenseStatus.CONFIRMED, id="confirmed-1us-before"),
        pytest.param(DispenseStatus.CONFIRMED, timedelta(0), DispenseStatus.LAPSED, id="lapsed-at-24h"),
        pytest.param(DispenseStatus.CONFIRMED, DAY, DispenseStatus.LAPSED, id="lapsed-later"),
        pytest.param(DispenseStatus.DISPENSED, DAY, DispenseStatus.DISPENSED, id="dispensed-stays"),
        pytest.param(DispenseStatus.REVERSED, DAY, DispenseStatus.REVERSED, id="reversed-stays"),
    ],
)
def test_R_DISP_2_confirmation_lapses_after_24_hours(status, offset, effective):
    until = confirmation_expires_at(NOW, PROGRAM)
    assert until == NOW + timedelta(hours=24)
    assert effective_dispense_status(status, until, until + offset) is effective


@pytest.mark.parametrize(
    "prior, expected",
    [
        pytest.param(None, OK, id="first-dispense"),
        pytest.param(PriorDispense(NOW - 21 * DAY, 28), OK, id="7-days-remain"),
        pytest.param(PriorDispense(NOW - 20 * DAY, 28), {EARLY}, id="8-days-remain"),
        pytest.param(PriorDispense(utc(2026, 5, 25, 23, 59, 59, 999999), 28), OK, id="7-calendar-days-7.5-elapsed"),
        pytest.param(PriorDispense(utc(2026, 5, 26, 0, 0), 28), {EARLY}, id="8-calendar-days-7.5-elapsed"),
        pytest.param(PriorDispense(NOW - 7 * DAY, 14), OK, id="14-day-supply-7-remain"),
        pytest.param(PriorDispense(NOW - 6 * DAY, 14), {EARLY}, id="14-day-supply-8-remain"),
        pytest.param(PriorDispense(NOW - 40 * DAY, 28), OK, id="supply-used-up"),
    ],
)
def test_R_DISP_3_early_refill(prior, expected):
    check(decide("dispense", edit(prior_dispense=prior)), expected)


@pytest.mark.parametrize(
    "authorized, requested, expected",
    [
        pytest.param(a, r, e, id=f"{r}-of-{a}")
        for a, r, e in [(28, 28, OK), (28, 29, {DISP_SUPPLY}), (14, 14, OK), (14, 15, {DISP_SUPPLY}), (14, 7, OK)]
    ],
)
def test_R_DISP_4_dispensed_supply_within_authorized(authorized, requested, expected):
    check(
        decide("dispense", both(edit("authorization", days_supply=authorized), edit("request", days_supply=requested))),
        expected,
    )


@pytest.mark.parametrize(
    "authorized, requested, expected",
    [
        pytest.param(a, r, e, id=f"{r}-of-{a}")
        for a, r, e in [
            (28, 28, OK),
            (28, 29, {DISP_QUANTITY}),
            (28, 100, {DISP_QUANTITY}),
            (21, 21, OK),
            (21, 22, {DISP_QUANTITY}),
            (21, 1, OK),
            (None, 100, OK),  # a snapshot stored before the authorization's quantity was read
        ]
    ],
)
def test_R_DISP_6_dispensed_quantity_within_authorized(authorized, requested, expected):
    decision = check(
        decide("dispense", both(edit("authorization", quantity=authorized), edit("request", quantity=requested))),
        expected,
    )
    if expected:
        assert decision.reasons[0].next_step == f"Set `quantity` to {authorized} or less, as authorized."


def test_R_DISP_6_the_100_capsule_dispense_against_28_is_refused():
    """The issue's example: 100 capsules against an authorization for 28."""
    decision = decide("dispense", both(edit("authorization", quantity=28), edit("request", quantity=100)))
    check(decision, {DISP_QUANTITY})


@pytest.mark.parametrize(
    "mutate, expected",
    [
        pytest.param(edit("authorization", status=AuthorizationStatus.DISPENSED), {USED}, id="dispensed"),
        pytest.param(
            edit("authorization", status=AuthorizationStatus.DISPENSED, expires_at=NOW - DAY),
            {USED},
            id="dispensed-then-expired",
        ),
        pytest.param(
            edit("authorization", status=CONFIRMED, confirmation_expires_at=NOW + 12 * HOUR),
            {USED},
            id="confirmed-elsewhere",
        ),
    ],
)
def test_R_DISP_5_single_use(mutate, expected):
    check(decide("dispense", mutate), expected)


@pytest.mark.parametrize(
    "status, expected",
    [
        pytest.param(PharmacyStatus.CERTIFIED, OK, id="certified"),
        pytest.param(PharmacyStatus.PENDING, {PHA1}, id="pending"),
        pytest.param(PharmacyStatus.SUSPENDED, {PHA1}, id="suspended"),
        pytest.param(PharmacyStatus.DECERTIFIED, {PHA1}, id="decertified"),
    ],
)
def test_R_PHA_1_pharmacy_certified(status, expected):
    check(decide("dispense", edit("pharmacy", status=status)), expected)


@pytest.mark.parametrize(
    "status, until, expected",
    [
        pytest.param(PharmacyStatus.CERTIFIED, NOW, {PHA2}, id="until-now"),
        pytest.param(PharmacyStatus.CERTIFIED, NOW + US, OK, id="until-now-plus-1us"),
        pytest.param(PharmacyStatus.CERTIFIED, NOW - DAY, {PHA2}, id="until-yesterday"),
        pytest.param(
            PharmacyStatus.CERTIFIED, PROGRAM.pharmacy_certified_until(NOW - 730 * DAY), {PHA2}, id="certified-730d-ago"
        ),
        pytest.param(
            PharmacyStatus.CERTIFIED, PROGRAM.pharmacy_certified_until(NOW - 729 * DAY), OK, id="certified-729d-ago"
        ),
        pytest.param(PharmacyStatus.EXPIRED, NOW + DAY, {PHA2}, id="stored-expired"),
        pytest.param(PharmacyStatus.SUSPENDED, NOW - DAY, {PHA1}, id="suspended-past-until"),
    ],
)
def test_R_PHA_2_pharmacy_certification_expiry(status, until, expected):
    check(decide("dispense", edit("pharmacy", status=status, certified_until=until)), expected)


@pytest.mark.parametrize(
    "trained, expected",
    [
        pytest.param(None, {PHA3}, id="never"),
        pytest.param(NOW + US, {PHA3}, id="in-the-future"),
        pytest.param(NOW, OK, id="now"),
        pytest.param(NOW - DAY, OK, id="yesterday"),
    ],
)
def test_R_PHA_3_pharmacist_trained(trained, expected):
    check(decide("dispense", edit("pharmacist", training_completed_at=trained)), expected)


IRREGULAR = MenstrualCycle.IRREGULAR


@pytest.mark.parametrize(
    "kind, mutate, expected",
    [
        pytest.param("dispense", with_tests(neg(NOW - 7 * DAY), started=NOW - 10 * DAY), OK, id="first-phase-7d"),
        pytest.param("dispense", with_tests(neg(NOW - 8 * DAY), started=NOW - 10 * DAY), {STALE}, id="first-phase-8d"),
        pytest.param(
            "dispense", with_tests(neg(utc(2026, 6, 8)), started=NOW - 10 * DAY), OK, id="first-phase-7-calendar-days"
        ),
        pytest.param(
            "dispense",
            with_tests(neg(utc(2026, 6, 7, 23, 59)), started=NOW - 10 * DAY),
            {STALE},
            id="first-phase-8-calendar-days",
        ),
        pytest.param(
            "dispense",
            with_tests(neg(NOW - 8 * DAY), started=NOW - 27 * DAY),
            {STALE},
            id="therapy-day-27-still-weekly",
        ),
        pytest.param(
            "dispense", with_tests(neg(NOW - 8 * DAY), started=NOW - 28 * DAY), OK, id="therapy-day-28-monthly"
        ),
        pytest.param(
            "dispense",
            with_tests(neg(NOW - 8 * DAY), started=None, status=PatientStatus.ENROLLED),
            {STALE},
            id="before-therapy-weekly",
        ),
        pytest.param("dispense", with_tests(neg(NOW - 28 * DAY)), OK, id="regular-28d"),
        pytest.param("dispense", with_tests(neg(NOW - 29 * DAY)), {STALE}, id="regular-29d"),
        pytest.param("dispense", with_tests(neg(NOW - 14 * DAY), cycle=IRREGULAR), OK, id="irregular-14d"),
        pytest.param("dispense", with_tests(neg(NOW - 15 * DAY), cycle=IRREGULAR), {STALE}, id="irregular-15d"),
        pytest.param(
            "dispense", with_tests(neg(NOW - 15 * DAY), cycle=None), {STALE}, id="unknown-cycle-counts-irregular"
        ),
        pytest.param("dispense", with_tests(), {MISSING}, id="no-test"),
        pytest.param("dispense", with_tests(neg(NOW + HOUR)), {MISSING}, id="future-test-does-not-count"),
        pytest.param(
            "dispense",
            with_tests(neg(NOW - DAY, sensitivity=100), neg(NOW - 29 * DAY)),
            {STALE},
            id="insensitive-test-does-not-count",
        ),
        pytest.param("dispense", with_tests(neg(NOW - 3 * DAY), pos(NOW - DAY)), {POSITIVE}, id="newest-positive"),
        pytest.param("authorization", with_tests(neg(NOW - 28 * DAY)), OK, id="authorization-regular-28d"),
        pytest.param("authorization", with_tests(neg(NOW - 29 * DAY)), {STALE}, id="authorization-regular-29d"),
    ],
)
def test_R_PREG_3_testing_interval_during_therapy(kind, mutate, expected):
    check(decide(kind, mutate), expected)


@pytest.mark.parametrize(
    "guide, checklist, expected",
    [
        pytest.param(True, True, OK, id="complete"),
        pytest.param(False, True, {COUNSEL}, id="no-medication-guide"),
        pytest.param(True, False, {COUNSEL}, id="checklist-incomplete"),
        pytest.param(False, False, {COUNSEL}, id="neither"),
    ],
)
def test_R_COUNSEL_1_counseling_checklist(guide, checklist, expected):
    check(
        decide("dispense", edit("request.counseling", medication_guide_provided=guide, checklist_completed=checklist)),
        expected,
    )


@pytest.mark.parametrize(
    "cat, last_survey_at, expected",
    [
        pytest.param(FRP, NOW - 28 * DAY, OK, id="frp-28d"),
        pytest.param(FRP, NOW - 29 * DAY, {SURVEY}, id="frp-29d"),
        pytest.param(FRP, utc(2026, 5, 18), OK, id="frp-28-calendar-days"),
        pytest.param(FRP, utc(2026, 5, 17, 23, 59), {SURVEY}, id="frp-29-calendar-days"),
        pytest.param(FRP, None, {SURVEY}, id="frp-none"),
        pytest.param(FRP, NOW + HOUR, {SURVEY}, id="frp-future"),
        pytest.param(MALE, NOW - 28 * DAY, OK, id="male-28d"),
        pytest.param(MALE, NOW - 29 * DAY, {SURVEY}, id="male-29d"),
        pytest.param(FNRP, NOW - 182 * DAY, OK, id="fnrp-adult-182d"),
        pytest.param(FNRP, NOW - 183 * DAY, {SURVEY}, id="fnrp-adult-183d"),
        pytest.param(FNRP, None, {SURVEY}, id="fnrp-adult-none"),
        pytest.param(FNRP_CHILD, NOW - 29 * DAY, {SURVEY}, id="fnrp-child-29d"),
    ],
)
def test_R_SURV_1_patient_survey_current(cat, last_survey_at, expected):
    check(decide("authorization", both(category(cat), edit(last_survey_at=last_survey_at))), expected)


def test_authorization_lists_every_failing_reason():
    mutate = both(
        edit(prescriber_status=PrescriberStatus.SUSPENDED, last_survey_at=None),
        edit("request", days_supply=29),
        edit(SURVEY_PATH, counseled_on_risks=False, contraception_confirmed=None),
        edit("patient", status=PatientStatus.NEEDS_INTERVENTION, tests=(neg(NOW - 40 * DAY),)),
    )
    decision = check(decide("authorization", mutate), {PRES1, SUPPLY, NOT_ELIGIBLE, PRES2, CONTRA1, STALE, SURVEY})
    assert len(decision.reasons) == 7


def test_dispense_lists_every_failing_reason():
    mutate = both(
        edit("pharmacy", status=PharmacyStatus.SUSPENDED),
        edit("pharmacist", training_completed_at=None),
        edit("request", days_supply=29, counseling=Counseling(True, False)),
        edit("authorization", expires_at=NOW),
        edit("patient", status=PatientStatus.HALTED, tests=(neg(NOW - 3 * DAY), pos(NOW - DAY))),
        edit(prior_dispense=PriorDispense(NOW - DAY, 28)),
    )
    decision = check(
        decide("dispense", mutate), {PHA1, PHA3, COUNSEL, EXPIRED, DISP_SUPPLY, NOT_ELIGIBLE, POSITIVE, EARLY}
    )
    assert len(decision.reasons) == 8


@pytest.mark.parametrize(
    "kind, mutate",
    [
        pytest.param("authorization", SAME, id="authorization-approved"),
        pytest.param(
            "authorization",
            edit("patient", menstrual_cycle=None, therapy_started_at=None, status=PatientStatus.ENROLLED),
            id="authorization-denied",
        ),
        pytest.param("dispense", SAME, id="dispense-approved"),
        pytest.param("dispense", edit(authorization=None, patient=None, prior_dispense=None), id="dispense-not-found"),
        pytest.param(
            "dispense",
            edit("authorization", status=CONFIRMED, confirmation_expires_at=NOW + HOUR),
            id="dispense-confirmed",
        ),
    ],
)
def test_snapshot_round_trip_and_replay(kind, mutate):
    baseline, fn = DECIDERS[kind]
    ctx = mutate(baseline())
    data = dump(ctx)
    assert load(type(ctx), data) == ctx
    assert dump(load(type(ctx), data)) == data
    assert replay(kind, data, PROGRAM, NOW) == fn(ctx, PROGRAM, NOW)


def test_an_old_dispense_snapshot_without_the_authorizations_quantity_still_loads_and_replays():
    """Snapshots stored before ``AuthorizationFacts.quantity`` (and ``confirmation_pharmacy_id``)
    existed lack them: they load as None, and R-DISP-6 is skipped, so the recorded outcome holds."""
    ctx = edit("request", quantity=100)(dispense_ctx())
    old = dump(ctx)
    del old["authorization"]["quantity"], old["authorization"]["confirmation_pharmacy_id"]
    loaded = load(DispenseContext, old)
    assert loaded.authorization is not None and loaded.authorization.quantity is None
    assert replay("dispense", old, PROGRAM, NOW).approved  # approved then, approved on replay
    assert not decide_dispense(ctx, PROGRAM, NOW).approved  # with the quantity read, R-DISP-6 refuses it
    with pytest.raises(ValueError):
        load(DispenseContext, {**old, "authorization": {**old["authorization"], "surprise": 1}})
    required = dict(old["authorization"])
    del required["days_supply"]
    with pytest.raises(ValueError):
        load(DispenseContext, {**old, "authorization": required})


def test_R_AUTH_5_is_not_applied_under_the_version_that_predates_it():
    """Decisions recorded under 2020.1 (before R-AUTH-5 was catalogued) replay unchanged:
    that version has no capsules-per-day number, so 100 capsules for 28 days was approved."""
    program = load_program()
    before, after = program.version("2020.1"), program.version("2026.1")
    assert before.max_capsules_per_day is None and after.max_capsules_per_day == 1
    ctx = edit("request", days_supply=28, quantity=100)(auth_ctx())
    assert decide_authorization(ctx, before, NOW).approved
    assert [r.code for r in decide_authorization(ctx, after, NOW).reasons] == [Code.QUANTITY_EXCEEDED]
    assert replay("authorization", dump(ctx), before, NOW).approved


def test_R_DISP_6_the_authorized_quantity_is_a_required_fact_of_every_new_snapshot():
    """Only a snapshot stored before the quantity was read may lack it; code that builds
    the facts now cannot leave it out (a missing quantity would skip R-DISP-6)."""
    with pytest.raises(TypeError, match="quantity"):
        AuthorizationFacts(AUTH_NUMBER, AuthorizationStatus.ISSUED, NOW, NOW + DAY, PATIENT, 28, None)  # type: ignore[call-arg]
