"""Each requirement's state (``workflows.requirements``) agrees with the decisions: a
requirement is unmet exactly when the authorization (or dispense) decision gives its
reasons. Pure: no database, no Flask."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from config.programs import load_program
from tests.helpers import utc
from workflows.authorizations import (
    AuthorizationContext,
    AuthorizationRequest,
    AuthorizationStatus,
    PrescriberSurvey,
    decide_authorization,
)
from workflows.decisions import PatientFacts
from workflows.dispenses import AuthorizationFacts
from workflows.participants import PrescriberStatus
from workflows.patients import MenstrualCycle, PatientStatus, RiskCategory
from workflows.requirements import (
    PATIENT_STATUS,
    PREGNANCY_TESTING,
    PRESCRIBER_CERTIFICATION,
    PRESCRIPTION_AUTHORIZATION,
    RequirementsContext,
    case_reasons,
    outstanding,
    requirement_states,
)
from workflows.rules import Code, Rule
from workflows.testing import PregnancyResult, PregnancyTest

NOW = utc(2026, 6, 15, 12)
PROGRAM = load_program().in_force(NOW)
DAY = timedelta(days=1)


def facts(**changes) -> PatientFacts:
    base = PatientFacts(
        patient_id="p",
        rems_patient_id="RP-0001",
        prescriber_id="presc-1",
        risk_category=RiskCategory.FRP_ADULT,
        menstrual_cycle=MenstrualCycle.REGULAR,
        status=PatientStatus.ON_THERAPY,
        therapy_started_at=NOW - 60 * DAY,
        tests=(PregnancyTest(NOW - 3 * DAY, PregnancyResult.NEGATIVE, 25),),
    )
    return replace(base, **changes)


def ctx(**changes) -> RequirementsContext:
    base = RequirementsContext(PrescriberStatus.CERTIFIED, facts(), NOW - 5 * DAY)
    return replace(base, **changes)


def _authorization_codes(c: RequirementsContext) -> set[tuple[str, str]]:
    decision = decide_authorization(
        AuthorizationContext(
            prescriber_id=c.patient.prescriber_id,
            prescriber_status=c.prescriber_status,
            patient=c.patient,
            last_survey_at=c.last_survey_at,
            request=AuthorizationRequest(28, 28, 10.0, PrescriberSurvey(True, True)),
        ),
        PROGRAM,
        NOW,
    )
    return {(r.code.value, r.rule.value) for r in decision.reasons}


CASES = {
    "all met": ctx(),
    "prescriber suspended": ctx(prescriber_status=PrescriberStatus.SUSPENDED),
    "patient halted": ctx(patient=facts(status=PatientStatus.HALTED)),
    "test stale": ctx(patient=facts(tests=(PregnancyTest(NOW - 40 * DAY, PregnancyResult.NEGATIVE, 25),))),
    "no survey": ctx(last_survey_at=None),
    "male, nothing tested": ctx(patient=facts(risk_category=RiskCategory.MALE_ADULT, menstrual_cycle=None, tests=())),
}


@pytest.mark.parametrize("name", CASES)
def test_requirements_are_unmet_exactly_as_the_authorization_decision_says(name):
    c = CASES[name]
    states = requirement_states(c, PROGRAM, NOW)
    given = {(r.code.value, r.rule.value) for state in states for r in state.reasons}
    assert given == _authorization_codes(c)
    assert (PREGNANCY_TESTING in [s.name for s in states]) is c.patient.risk_category.is_frp


def test_named_requirements_and_authorization_state():
    states = requirement_states(ctx(prescriber_status=PrescriberStatus.PENDING), PROGRAM, NOW)
    assert [s.name for s in outstanding(states)] == [PRESCRIBER_CERTIFICATION]
    auth = AuthorizationFacts(
        "RA-1", AuthorizationStatus.VOIDED, NOW - DAY, NOW + 6 * DAY, "RP-0001", 28, None, 28, None
    )
    states = requirement_states(ctx(authorization=auth), PROGRAM, NOW)
    (state,) = outstanding(states)
    assert state.name == PRESCRIPTION_AUTHORIZATION and state.reasons[0].code is Code.AUTHORIZATION_VOIDED
    other = replace(auth, status=AuthorizationStatus.ISSUED, rems_patient_id="RP-9999")
    (state,) = outstanding(requirement_states(ctx(authorization=other), PROGRAM, NOW))
    assert state.reasons[0].code is Code.AUTHORIZATION_PATIENT_MISMATCH
    met = replace(auth, status=AuthorizationStatus.ISSUED)
    assert outstanding(requirement_states(ctx(authorization=met), PROGRAM, NOW)) == ()


def test_case_reasons():
    assert case_reasons(facts(), True, True) == ()
    codes = [r.code for r in case_reasons(facts(status=PatientStatus.DISCONTINUED), False, False)]
    assert codes == [Code.PATIENT_PRESCRIBER_MISMATCH, Code.PATIENT_NOT_ELIGIBLE, Code.AUTHORIZATION_NOT_FOUND]
    assert [s.rule for s in requirement_states(ctx(), PROGRAM, NOW) if s.name == PATIENT_STATUS] == [Rule.R_PAT_2]
