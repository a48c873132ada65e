"""Every reason says what a person can do next (REMS_RULES.md, "Reason codes": ``next_step``).

One table of cases, one per way a decision can fail, each from the approved
baselines of ``test_decision_rules``: the reason's ``next_step`` is non-empty
and contains the dates, numbers or request fields computed from the facts.
``NOW`` is 2026-06-15 12:00 UTC and the program zone is UTC. A guard holds the
table to every (code, rule) pair that ``workflows/`` can produce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.unit.clinical_fixtures import ANC, PLT, course, lab
from tests.unit.clinical_fixtures import facts as clinical_facts
from tests.unit.test_decision_rules import (
    DAY,
    HOUR,
    NOW,
    PROGRAM,
    SURVEY_PATH,
    both,
    category,
    decide,
    edit,
    neg,
    pos,
    with_tests,
)
from workflows.authorizations import AuthorizationStatus
from workflows.courses import CourseStatus
from workflows.dispenses import Counseling, PriorDispense
from workflows.participants import PharmacyStatus, PrescriberStatus
from workflows.patients import PatientStatus, RiskCategory
from workflows.reasons import Reason
from workflows.replay import compare, summary
from workflows.rules import Code, Rule

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
ENROLLED = {"started": None, "status": PatientStatus.ENROLLED}
NO_AUTH = edit(authorization=None, patient=None, prior_dispense=None)
CONFIRMED = AuthorizationStatus.CONFIRMED


@dataclass(frozen=True)
class Step:
    id: str
    kind: str
    mutate: Any
    code: Code
    rule: Rule
    #: Fragments the next step must contain (dates, numbers, fields, who acts).
    says: tuple[str, ...] = ()
    #: Fragments it must not contain.
    never: tuple[str, ...] = ()


def step(id, kind, mutate, code, rule, *says, never=()):
    return Step(id, kind, mutate, code, rule, says, tuple(never))


STEPS = [
    # -- the prescriber's decision -------------------------------------------------------------------
    step(
        "prescriber-pending",
        "authorization",
        edit(prescriber_status=PrescriberStatus.PENDING),
        Code.PRESCRIBER_NOT_CERTIFIED,
        Rule.R_PRES_1,
        "Complete certification",
    ),
    step(
        "prescriber-suspended",
        "authorization",
        edit(prescriber_status=PrescriberStatus.SUSPENDED),
        Code.PRESCRIBER_NOT_CERTIFIED,
        Rule.R_PRES_1,
        "administrator must reinstate",
    ),
    step(
        "days-supply",
        "authorization",
        edit("request", days_supply=29),
        Code.DAYS_SUPPLY_EXCEEDED,
        Rule.R_AUTH_2,
        "`days_supply` to 28 or less",
    ),
    step(
        "quantity",
        "authorization",
        edit("request", days_supply=21, quantity=28),
        Code.QUANTITY_EXCEEDED,
        Rule.R_AUTH_5,
        "`quantity` to 21 or less",
        "21-day",
    ),
    step(
        "other-prescriber",
        "authorization",
        edit(prescriber_id="presc-2"),
        Code.PATIENT_PRESCRIBER_MISMATCH,
        Rule.R_AUTH_1,
        "`patient_id`",
    ),
    step(
        "halted",
        "authorization",
        edit("patient", status=PatientStatus.HALTED),
        Code.PATIENT_NOT_ELIGIBLE,
        Rule.R_PAT_2,
        "administrator",
        "reinstate",
    ),
    step(
        "needs-intervention",
        "dispense",
        edit("patient", status=PatientStatus.NEEDS_INTERVENTION),
        Code.PATIENT_NOT_ELIGIBLE,
        Rule.R_PAT_2,
        "resolve the intervention",
    ),
    step(
        "discontinued",
        "authorization",
        edit("patient", status=PatientStatus.DISCONTINUED),
        Code.PATIENT_NOT_ELIGIBLE,
        Rule.R_PAT_2,
        "final",
    ),
    step(
        "not-counseled",
        "authorization",
        edit(SURVEY_PATH, counseled_on_risks=False),
        Code.PRESCRIBER_SURVEY_INCOMPLETE,
        Rule.R_PRES_2,
        "`prescriber_survey.counseled_on_risks: true`",
    ),
    step(
        "frp-contraception",
        "authorization",
        edit(SURVEY_PATH, contraception_confirmed=None),
        Code.PRESCRIBER_SURVEY_INCOMPLETE,
        Rule.R_CONTRA_1,
        "`prescriber_survey.contraception_confirmed: true`",
        "two reliable methods",
    ),
    step(
        "male-condoms",
        "authorization",
        both(category(RiskCategory.MALE_ADULT), edit(SURVEY_PATH, contraception_confirmed=False)),
        Code.PRESCRIBER_SURVEY_INCOMPLETE,
        Rule.R_CONTRA_2,
        "`prescriber_survey.contraception_confirmed: true`",
        "condom",
    ),
    # R-PREG-1, first authorization: no test; a first test collected today opens 25-29 June.
    step(
        "first-authorization-no-test",
        "authorization",
        with_tests(**ENROLLED),
        Code.PREGNANCY_TEST_MISSING,
        Rule.R_PREG_1,
        "today (2026-06-15)",
        "from 2026-06-25 to 2026-06-29",
        "within the 24 hours",
    ),
    # Only a test of 2 hours ago: it counts as the first from 25 to 29 June.
    step(
        "first-test-too-recent",
        "authorization",
        with_tests(neg(NOW - 2 * HOUR), **ENROLLED),
        Code.PREGNANCY_TEST_OUT_OF_WINDOW,
        Rule.R_PREG_1,
        "between 2026-06-01 and 2026-06-05",
        "negative test of 2026-06-15",
        "from 2026-06-25 to 2026-06-29",
    ),
    # Only a test of 20 days ago: too old to count; a new first test is needed.
    step(
        "first-test-too-old",
        "authorization",
        with_tests(neg(NOW - 20 * DAY), **ENROLLED),
        Code.PREGNANCY_TEST_OUT_OF_WINDOW,
        Rule.R_PREG_1,
        "Record a new first negative test",
        "from 2026-06-25 to 2026-06-29",
    ),
    # The first test (12 days ago) counts until 17 June; the second must be within 24 hours.
    step(
        "second-test-missing",
        "authorization",
        with_tests(neg(NOW - 12 * DAY), **ENROLLED),
        Code.PREGNANCY_TEST_OUT_OF_WINDOW,
        Rule.R_PREG_1,
        "within 24 hours",
        "2026-06-16 12:00 UTC",
        "between 2026-06-15 and 2026-06-17",
    ),
    # R-PREG-3: during therapy (regular cycles, past day 28) every 28 days: on or after 18 May.
    step(
        "no-test-at-the-pharmacy",
        "dispense",
        with_tests(),
        Code.PREGNANCY_TEST_MISSING,
        Rule.R_PREG_3,
        "The prescriber must record",
        "on or after 2026-05-18",
    ),
    step(
        "stale-at-the-pharmacy",
        "dispense",
        with_tests(neg(NOW - 29 * DAY)),
        Code.PREGNANCY_TEST_STALE,
        Rule.R_PREG_3,
        "The prescriber must record a negative pregnancy test collected on or after 2026-05-18",
    ),
    step(
        "stale-first-phase-at-the-pharmacy",
        "dispense",
        with_tests(neg(NOW - 8 * DAY), started=NOW - 10 * DAY),
        Code.PREGNANCY_TEST_STALE,
        Rule.R_PREG_3,
        "on or after 2026-06-08",
    ),
    step(
        "stale-at-authorization",
        "authorization",
        with_tests(neg(NOW - 29 * DAY)),
        Code.PREGNANCY_TEST_STALE,
        Rule.R_PREG_3,
        "Record a negative pregnancy test",
        "on or after 2026-05-18",
        never=("The prescriber must",),
    ),
    step(
        "positive",
        "dispense",
        with_tests(neg(NOW - 3 * DAY), pos(NOW - DAY)),
        Code.PREGNANCY_TEST_POSITIVE,
        Rule.R_PREG_4,
        "administrator can reinstate",
    ),
    step(
        "survey-never",
        "authorization",
        edit(last_survey_at=None),
        Code.PATIENT_SURVEY_OVERDUE,
        Rule.R_SURV_1,
        "every question answered",
        "28 days",
    ),
    # Completed 17 May: counted through 14 June.
    step(
        "survey-overdue",
        "authorization",
        edit(last_survey_at=NOW - 29 * DAY),
        Code.PATIENT_SURVEY_OVERDUE,
        Rule.R_SURV_1,
        "counted through 2026-06-14",
    ),
    # -- the pharmacy's decision -------------------------------------------------------------------
    step(
        "pharmacy-suspended",
        "dispense",
        edit("pharmacy", status=PharmacyStatus.SUSPENDED),
        Code.PHARMACY_NOT_CERTIFIED,
        Rule.R_PHA_1,
        "administrator must reinstate",
    ),
    step(
        "pharmacy-decertified",
        "dispense",
        edit("pharmacy", status=PharmacyStatus.DECERTIFIED),
        Code.PHARMACY_NOT_CERTIFIED,
        Rule.R_PHA_1,
        "another certified pharmacy",
    ),
    step(
        "pharmacy-expired",
        "dispense",
        edit("pharmacy", certified_until=NOW - DAY),
        Code.PHARMACY_CERTIFICATION_EXPIRED,
        Rule.R_PHA_2,
        "renew",
        "2026-06-14 12:00 UTC",
    ),
    step(
        "pharmacist-untrained",
        "dispense",
        edit("pharmacist", training_completed_at=None),
        Code.PHARMACIST_NOT_TRAINED,
        Rule.R_PHA_3,
        "completed REMS training",
    ),
    step(
        "pharmacist-trained-later",
        "dispense",
        edit("pharmacist", training_completed_at=NOW + 3 * HOUR),
        Code.PHARMACIST_NOT_TRAINED,
        Rule.R_PHA_3,
        "2026-06-15 15:00 UTC",
    ),
    step(
        "checklist",
        "dispense",
        edit("request", counseling=Counseling(True, False)),
        Code.COUNSELING_INCOMPLETE,
        Rule.R_COUNSEL_1,
        "`counseling.checklist_completed: true`",
        never=("medication_guide_provided",),
    ),
    step(
        "guide-and-checklist",
        "dispense",
        edit("request", counseling=Counseling(False, False)),
        Code.COUNSELING_INCOMPLETE,
        Rule.R_COUNSEL_1,
        "`counseling.medication_guide_provided: true`",
        "`counseling.checklist_completed: true`",
    ),
    step(
        "number-mistyped",
        "dispense",
        both(NO_AUTH, edit("request", authorization_number="RA-0000A-0000B")),
        Code.AUTHORIZATION_NOT_FOUND,
        Rule.R_AUTH_4,
        "`authorization_number`",
        "not a number of the form",
        "typing error",
    ),
    step(
        "number-unknown",
        "dispense",
        NO_AUTH,
        Code.AUTHORIZATION_NOT_FOUND,
        Rule.R_AUTH_4,
        "`authorization_number` is well formed",
        "no authorization has it",
        never=("typing error",),
    ),
    step(
        "another-patient",
        "dispense",
        edit("request", rems_patient_id="RP-0002"),
        Code.AUTHORIZATION_PATIENT_MISMATCH,
        Rule.R_AUTH_4,
        "`rems_patient_id`",
        "`authorization_number`",
    ),
    step(
        "voided",
        "dispense",
        edit("authorization", status=AuthorizationStatus.VOIDED),
        Code.AUTHORIZATION_VOIDED,
        Rule.R_AUTH_3,
        "new authorization",
    ),
    step(
        "expired",
        "dispense",
        edit("authorization", expires_at=NOW - 2 * HOUR),
        Code.AUTHORIZATION_EXPIRED,
        Rule.R_AUTH_3,
        "2026-06-15 10:00 UTC",
        "prescriber must issue a new one",
    ),
    step(
        "dispensed",
        "dispense",
        edit("authorization", status=AuthorizationStatus.DISPENSED),
        Code.AUTHORIZATION_ALREADY_USED,
        Rule.R_DISP_5,
        "new authorization",
    ),
    # Held by this pharmacy's own confirmation until 17:00: complete or reverse it.
    step(
        "held-by-own-confirmation",
        "dispense",
        edit(
            "authorization",
            status=CONFIRMED,
            confirmation_expires_at=NOW + 5 * HOUR,
            confirmation_pharmacy_id="pharm-1",
        ),
        Code.AUTHORIZATION_ALREADY_USED,
        Rule.R_DISP_5,
        "your own pharmacy",
        "until 2026-06-15 17:00 UTC",
        "complete the hand-over or reverse",
    ),
    # Held by another pharmacy: when it lapses, and until when the authorization stays valid.
    step(
        "held-by-another-pharmacy",
        "dispense",
        edit(
            "authorization",
            status=CONFIRMED,
            confirmation_expires_at=NOW + 5 * HOUR,
            confirmation_pharmacy_id="pharm-2",
        ),
        Code.AUTHORIZATION_ALREADY_USED,
        Rule.R_DISP_5,
        "Another pharmacy's confirmation",
        "until 2026-06-15 17:00 UTC",
        "free again until it expires at 2026-06-21 12:00 UTC",
        never=("pharm-2",),
    ),
    step(
        "held-past-the-authorizations-expiry",
        "dispense",
        edit("authorization", status=CONFIRMED, confirmation_expires_at=NOW + 5 * HOUR, expires_at=NOW + HOUR),
        Code.AUTHORIZATION_ALREADY_USED,
        Rule.R_DISP_5,
        "A dispense confirmation holds it until 2026-06-15 17:00 UTC",
        "new authorization",
    ),
    step(
        "days-supply-over-authorized",
        "dispense",
        edit("authorization", days_supply=14),
        Code.DAYS_SUPPLY_EXCEEDED,
        Rule.R_DISP_4,
        "`days_supply` to 14 or less",
    ),
    step(
        "quantity-over-authorized",
        "dispense",
        edit("request", quantity=100),
        Code.QUANTITY_EXCEEDED,
        Rule.R_DISP_6,
        "`quantity` to 28 or less",
    ),
    # Previous 28-day supply dispensed 26 May 12:00: it ends 23 June; a refill from 16 June.
    step(
        "early-refill",
        "dispense",
        edit(prior_dispense=PriorDispense(NOW - 20 * DAY, 28)),
        Code.EARLY_REFILL,
        Rule.R_DISP_3,
        "A refill is allowed from 2026-06-16 (7 days before the previous supply ends on 2026-06-23)",
    ),
    step(
        "early-refill-14-day-supply",
        "dispense",
        edit(prior_dispense=PriorDispense(NOW - 2 * DAY, 14)),
        Code.EARLY_REFILL,
        Rule.R_DISP_3,
        "from 2026-06-20",
        "ends on 2026-06-27",
    ),
    # -- CLINICAL_RULES.md: the two rules that refuse ----------------------------------------------
    step(
        "treatment-on-hold",
        "authorization",
        edit(clinical=clinical_facts(course(status=CourseStatus.ON_HOLD, status_reason_code="hematologic"))),
        Code.TREATMENT_ON_HOLD,
        Rule.R_CYCLE_3,
        "resume the course",
    ),
    step(
        "treatment-stopped",
        "dispense",
        edit(clinical=clinical_facts(course(status=CourseStatus.STOPPED, status_reason_code="other"))),
        Code.TREATMENT_ON_HOLD,
        Rule.R_CYCLE_3,
        "start a new course",
    ),
    step(
        "critical-unacknowledged",
        "dispense",
        edit(clinical=clinical_facts(labs=(lab(ANC, 2.0), lab(PLT, 25.0)))),
        Code.CLINICAL_ALERT_UNACKNOWLEDGED,
        Rule.R_ACK_1,
        '"rule": "R-CBC-2"',
        "pharmacist",
    ),
]


@pytest.mark.parametrize("s", STEPS, ids=lambda s: s.id)
def test_every_reason_says_what_to_do_next(s: Step):
    decision = decide(s.kind, s.mutate)
    matching = [r for r in decision.reasons if (r.code, r.rule) == (s.code, s.rule)]
    assert matching, f"expected {s.code.value}/{s.rule.value}, got {[r.as_dict() for r in decision.reasons]}"
    for reason in decision.reasons:
        assert reason.next_step.strip() and reason.as_dict()["next_step"] == reason.next_step
    text = " ".join(r.next_step for r in matching)
    for fragment in s.says:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    for fragment in s.never:
        assert fragment not in text, f"{fragment!r} in {text!r}"


def test_every_reason_the_decisions_can_give_is_in_the_table():
    given = set()
    for path in WORKFLOWS.glob("*.py"):
        given |= {(Code[c], Rule[r]) for c, r in re.findall(r"Code\.(\w+),\s*Rule\.(\w+)", path.read_text())}
    assert given, "no reasons found in workflows/"
    covered = {(s.code, s.rule) for s in STEPS}
    assert given <= covered, f"reasons without a next-step case: {sorted(given - covered)}"


def test_a_reason_without_a_next_step_is_refused():
    with pytest.raises(ValueError):
        Reason(Code.EARLY_REFILL, Rule.R_DISP_3, "8 days remain.", " ")
    with pytest.raises(ValueError):
        Reason(Code.EARLY_REFILL, Rule.R_DISP_3, "", "Ask again on 2026-06-16.")


def test_the_refill_date_is_the_first_day_the_rule_allows():
    """The date the EARLY_REFILL next step names is exactly the first day R-DISP-3 approves."""
    prior = edit(prior_dispense=PriorDispense(NOW - 20 * DAY, 28))
    (reason,) = decide("dispense", prior).reasons
    day = re.search(r"allowed from (\d{4}-\d{2}-\d{2})", reason.next_step).group(1)
    assert day == "2026-06-16"
    # The day before (today) is refused; the named day, at its first instant, is allowed.
    start = NOW.replace(day=16, hour=0)
    assert not decide("dispense", prior, now=start - HOUR).approved
    assert decide("dispense", prior, now=start).approved


def test_the_first_authorization_window_is_the_one_the_rule_allows():
    """The window the R-PREG-1 next step names for a too-recent first test is where R-PREG-1 holds."""
    recent = with_tests(neg(NOW - 2 * HOUR), **ENROLLED)
    step_text = " ".join(r.next_step for r in decide("authorization", recent).reasons)
    assert "from 2026-06-25 to 2026-06-29" in step_text
    for day, approved in [(24, False), (25, True), (29, True), (30, False)]:
        when = NOW.replace(day=day)
        # With a second negative test an hour before the authorization on that day.
        mutate = with_tests(neg(NOW - 2 * HOUR), neg(when - HOUR), **ENROLLED)
        assert decide("authorization", both(mutate, edit(last_survey_at=when - DAY)), now=when).approved is approved


def test_program_numbers_drive_the_next_steps():
    assert PROGRAM.refill_max_remaining_days == 7 and PROGRAM.max_days_supply == 28


def test_a_decision_recorded_before_next_steps_existed_still_replays():
    """Stored audit reasons of old decisions have no ``next_step``; replay compares code and rule only."""
    mutate = edit(prior_dispense=PriorDispense(NOW - 20 * DAY, 28))
    decision = decide("dispense", mutate)
    old_reasons = [{"code": r.code.value, "rule": r.rule.value, "message": r.message} for r in decision.reasons]
    recorded = summary(decision.outcome, old_reasons, decision.valid_until)
    assert compare(recorded, decision).matches
    changed = [{**old_reasons[0], "rule": "R-DISP-4"}]
    assert not compare(summary(decision.outcome, changed, decision.valid_until), decision).matches
