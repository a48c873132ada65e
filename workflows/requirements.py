"""Each REMS requirement's state for one patient (the ETASU of FHIR ``$rems-etasu`` and the
CDS Hooks cards, INTEROP.md), from the very checks that decide authorizations and dispenses.

Nothing here is a new rule: each requirement lists the reasons the decision functions
themselves would give for it at ``now`` (``decide_authorization`` for the prescriber,
the patient, the testing and the survey; ``decide_dispense``'s authorization check for
a prescription's authorization). A requirement is met when it has no reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .authorizations import prescriber_reasons
from .clock import ensure_utc
from .decisions import PatientFacts, eligibility_reasons
from .dispenses import AuthorizationFacts, authorization_status_reasons
from .participants import PrescriberStatus
from .patients import PatientStatus
from .program import ProgramVersion
from .reasons import Reason
from .rules import Code, Rule
from .surveys import evaluate_survey
from .testing import Purpose, evaluate_testing

#: The requirement names of INTEROP.md, in its order.
PRESCRIBER_CERTIFICATION = "Prescriber certification"
PATIENT_ENROLLMENT = "Patient enrollment"
PATIENT_STATUS = "Patient status"
PREGNANCY_TESTING = "Pregnancy testing"
PATIENT_SURVEY = "Patient survey"
PRESCRIPTION_AUTHORIZATION = "Prescription authorization"

#: Patient statuses that end or stop therapy until the program acts (a CDS Hooks card is critical).
STOPPED_STATUSES = frozenset({PatientStatus.HALTED, PatientStatus.DISCONTINUED})


@dataclass(frozen=True)
class Requirement:
    """One requirement: its name, the rule that sets it, and every reason it is not met."""

    name: str
    rule: Rule
    reasons: tuple[Reason, ...]

    @property
    def met(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class RequirementsContext:
    """What the requirements read: the patient, the status of the prescriber the patient
    is enrolled with, the newest complete survey, and a prescription's authorization if
    one is asked about."""

    prescriber_status: PrescriberStatus
    patient: PatientFacts
    last_survey_at: datetime | None
    authorization: AuthorizationFacts | None = None


def requirement_states(ctx: RequirementsContext, program: ProgramVersion, now: datetime) -> tuple[Requirement, ...]:
    """Every requirement's state at ``now``, in INTEROP.md's order.

    Pregnancy testing appears for FRP categories only; it is judged for a dispense
    (R-PREG-3) when an authorization is asked about, else for an authorization
    (R-PREG-1/3). Prescription authorization appears only with an authorization; one
    issued for another patient is AUTHORIZATION_PATIENT_MISMATCH.
    """
    now = ensure_utc(now)
    patient = ctx.patient
    purpose = Purpose.AUTHORIZATION if ctx.authorization is None else Purpose.DISPENSE
    states = [
        Requirement(PRESCRIBER_CERTIFICATION, Rule.R_PRES_1, tuple(prescriber_reasons(ctx.prescriber_status))),
        Requirement(PATIENT_ENROLLMENT, Rule.R_PAT_1, ()),
        Requirement(PATIENT_STATUS, Rule.R_PAT_2, tuple(eligibility_reasons(patient.status, "authorization"))),
    ]
    if patient.risk_category.is_frp:
        testing = evaluate_testing(patient.testing_inputs(), program, now, purpose)
        states.append(Requirement(PREGNANCY_TESTING, testing_rule(purpose, patient), tuple(testing.reasons)))
    survey = evaluate_survey(patient.risk_category, ctx.last_survey_at, program, now)
    states.append(Requirement(PATIENT_SURVEY, Rule.R_SURV_1, tuple(survey.reasons)))
    auth = ctx.authorization
    if auth is not None:
        if auth.rems_patient_id != patient.rems_patient_id:
            reasons: tuple[Reason, ...] = (
                Reason(
                    Code.AUTHORIZATION_PATIENT_MISMATCH,
                    Rule.R_AUTH_4,
                    "The authorization was issued for another patient.",
                    "Check the case number against the prescription; an authorization is bound to its own patient.",
                ),
            )
        else:
            reasons = tuple(authorization_status_reasons(auth, None, now))
        states.append(Requirement(PRESCRIPTION_AUTHORIZATION, Rule.R_AUTH_3, reasons))
    return tuple(states)


def testing_rule(purpose: Purpose, patient: PatientFacts) -> Rule:
    """R-PREG-1 before therapy's first authorization, R-PREG-3 otherwise."""
    if purpose is Purpose.AUTHORIZATION and patient.therapy_started_at is None:
        return Rule.R_PREG_1
    return Rule.R_PREG_3


def outstanding(states: tuple[Requirement, ...]) -> tuple[Requirement, ...]:
    """The requirements not met, in order."""
    return tuple(state for state in states if not state.met)


def case_reasons(patient: PatientFacts, prescriber_matches: bool, has_open_authorization: bool) -> tuple[Reason, ...]:
    """Why a pharmacy's case for ``patient`` (NCPDP ``REMSInitiationRequest``) is closed; none when
    it is open. A prescription written by another prescriber than the patient's
    (R-AUTH-1), a patient who may not be dispensed to (R-PAT-2), or no open
    authorization (issued, unexpired: R-AUTH-3/4) closes it."""
    reasons = []
    if not prescriber_matches:
        reasons.append(
            Reason(
                Code.PATIENT_PRESCRIBER_MISMATCH,
                Rule.R_AUTH_1,
                "The patient is not enrolled with the prescriber named on the prescription.",
                "Check the prescriber's NPI against the prescription; only the prescriber the patient is enrolled "
                "with may authorize it.",
            )
        )
    reasons += eligibility_reasons(patient.status, "dispense")
    if not has_open_authorization:
        reasons.append(
            Reason(
                Code.AUTHORIZATION_NOT_FOUND,
                Rule.R_AUTH_4,
                "The patient has no open authorization (issued and not expired).",
                "The prescriber must request an authorization for this prescription; then ask again.",
            )
        )
    return tuple(reasons)
