"""Prescription authorizations: the prescriber's decision (R-AUTH-1 to R-AUTH-5,
R-PRES-1/2, R-PAT-2, R-PREG-1/3/4, R-CONTRA-1/2, R-SURV-1) and the
authorization life cycle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, ClassVar

from .advisories import ClinicalFacts, ClinicalRequest
from .clock import ensure_utc
from .decisions import Decision, PatientFacts, clinical_advice, eligibility_reasons
from .lifecycle import Lifecycle, Move, StateChange, command
from .participants import PrescriberStatus
from .patients import RiskCategory
from .program import ProgramVersion
from .reasons import Reason
from .rules import Code, Rule
from .surveys import evaluate_survey, prescriber_survey_reasons
from .testing import Purpose, evaluate_testing

#: Prefix of authorization numbers ("REMS authorization").
NUMBER_PREFIX = "RA"


class AuthorizationStatus(str, Enum):
    ISSUED = "issued"
    CONFIRMED = "confirmed"
    DISPENSED = "dispensed"
    EXPIRED = "expired"
    VOIDED = "voided"


#: Statuses in which an authorization is still open (may yet be dispensed).
OPEN_STATUSES = frozenset({AuthorizationStatus.ISSUED, AuthorizationStatus.CONFIRMED})


def valid_days(category: RiskCategory, program: ProgramVersion) -> int:
    """R-AUTH-3: ``authorization_valid_days_frp`` for FRP categories, ``..._other`` for all others."""
    return program.authorization_valid_days_frp if category.is_frp else program.authorization_valid_days_other


def expires_at(issued_at: datetime, category: RiskCategory, program: ProgramVersion) -> datetime:
    """R-AUTH-3: counted from the issue time, as elapsed days (the stricter reading)."""
    return ensure_utc(issued_at) + timedelta(days=valid_days(category, program))


def effective_status(
    status: AuthorizationStatus,
    expires: datetime,
    confirmation_expires_at: datetime | None,
    now: datetime,
) -> AuthorizationStatus:
    """The status at ``now``, from timestamps, whatever the sweeps have mirrored.

    ``confirmation_expires_at`` is the end of the authorization's live
    dispense confirmation (None when it has none). A confirmation holds the
    authorization until it lapses (R-DISP-2); a lapsed one frees it again if
    the authorization is still valid. Past ``expires`` an authorization that
    holds no live confirmation is expired.
    """
    now = ensure_utc(now)
    if status not in OPEN_STATUSES:
        return status
    if confirmation_expires_at is not None and now < confirmation_expires_at:
        return AuthorizationStatus.CONFIRMED
    if now >= expires:
        return AuthorizationStatus.EXPIRED
    return AuthorizationStatus.ISSUED


class AuthorizationLifecycle(Lifecycle):
    """``issued → confirmed`` (a dispense confirmation holds it) ``→ dispensed``;
    ``confirmed → issued`` (the confirmation is reversed or voided);
    ``issued → expired``; ``issued|confirmed → voided``.

    Constructed in the *effective* status (``effective_status``), so an
    authorization whose time has run out cannot be confirmed or voided.
    """

    SUBJECT = "authorization"
    STATUS = AuthorizationStatus

    @command("authorization.confirmed", Move(AuthorizationStatus.ISSUED, AuthorizationStatus.CONFIRMED))
    def confirm(self, confirmation_number: str, now: datetime) -> StateChange:
        return self._fire(now, {"confirmation_number": confirmation_number})

    @command("authorization.released", Move(AuthorizationStatus.CONFIRMED, AuthorizationStatus.ISSUED))
    def release(self, reason: str, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})

    @command("authorization.dispensed", Move(AuthorizationStatus.CONFIRMED, AuthorizationStatus.DISPENSED))
    def dispense(self, confirmation_number: str, now: datetime) -> StateChange:
        return self._fire(now, {"confirmation_number": confirmation_number})

    @command("authorization.expired", Move(AuthorizationStatus.ISSUED, AuthorizationStatus.EXPIRED))
    def expire(self, now: datetime) -> StateChange:
        return self._fire(now)

    @command(
        "authorization.voided",
        Move((AuthorizationStatus.ISSUED, AuthorizationStatus.CONFIRMED), AuthorizationStatus.VOIDED),
    )
    def void(self, reason: str, now: datetime, details: dict[str, Any] | None = None) -> StateChange:
        return self._fire(now, {"reason": reason, **(details or {})})


@dataclass(frozen=True)
class PrescriberSurvey:
    """R-PRES-2: the prescriber's answers for this prescription."""

    counseled_on_risks: bool | None
    contraception_confirmed: bool | None


@dataclass(frozen=True)
class AuthorizationRequest:
    days_supply: int
    quantity: int
    strength_mg: float
    prescriber_survey: PrescriberSurvey


@dataclass(frozen=True)
class AuthorizationContext:
    """Everything an authorization decision reads.

    ``prescriber_id``/``prescriber_status`` are the calling prescriber's;
    ``last_survey_at`` is the newest *complete* patient survey's completion
    time (R-SURV-3).
    """

    prescriber_id: str
    prescriber_status: PrescriberStatus
    patient: PatientFacts
    last_survey_at: datetime | None
    request: AuthorizationRequest
    #: CLINICAL_RULES.md: the patient's course, labs and the request's acknowledgements;
    #: None for a patient without a course (and in snapshots stored before the layer).
    clinical: ClinicalFacts | None = None

    LEGACY_DEFAULTS: ClassVar[Mapping[str, Any]] = {"clinical": None}


_PRESCRIBER_NEXT = {
    PrescriberStatus.PENDING: (
        "Complete certification: attest to the prescribing information, the REMS education, counseling every "
        "patient and reporting any pregnancy; then ask again."
    ),
    PrescriberStatus.SUSPENDED: "A program administrator must reinstate the prescriber's certification.",
    PrescriberStatus.DECERTIFIED: (
        "Decertification is final: another certified prescriber must take over the patient's prescriptions."
    ),
}


def prescriber_reasons(status: PrescriberStatus) -> list[Reason]:
    """R-PRES-1: only a certified prescriber may prescribe."""
    if status is PrescriberStatus.CERTIFIED:
        return []
    return [
        Reason(
            Code.PRESCRIBER_NOT_CERTIFIED,
            Rule.R_PRES_1,
            f"The prescriber is '{status.value}'; only a certified prescriber may prescribe.",
            _PRESCRIBER_NEXT.get(status, "The prescriber must be certified by the program."),
        )
    ]


def _supply_reasons(request: AuthorizationRequest, program: ProgramVersion) -> list[Reason]:
    """R-AUTH-2 (days' supply) and R-AUTH-5 (capsules per day of supply)."""
    reasons = []
    if request.days_supply > program.max_days_supply:
        reasons.append(
            Reason(
                Code.DAYS_SUPPLY_EXCEEDED,
                Rule.R_AUTH_2,
                f"At most a {program.max_days_supply}-day supply per prescription; "
                f"{request.days_supply} days were requested.",
                f"Set `days_supply` to {program.max_days_supply} or less; a longer course needs a new authorization "
                "for each supply.",
            )
        )
    limit = program.max_quantity(request.days_supply)
    if limit is not None and request.quantity > limit:
        reasons.append(
            Reason(
                Code.QUANTITY_EXCEEDED,
                Rule.R_AUTH_5,
                f"{request.quantity} capsules were requested for a {request.days_supply}-day supply; at most "
                f"{program.max_capsules_per_day} capsule(s) per day of supply may be authorized.",
                f"Set `quantity` to {limit} or less for a {request.days_supply}-day supply.",
            )
        )
    return reasons


def decide_authorization(ctx: AuthorizationContext, program: ProgramVersion, now: datetime) -> Decision:
    """R-AUTH-1: issue an authorization only when every rule holds; else list every reason.

    A patient enrolled with another prescriber is refused with
    ``PATIENT_PRESCRIBER_MISMATCH`` alone among the patient's checks: the
    caller must not learn another prescriber's patient's testing or survey
    state from the reasons.
    """
    now = ensure_utc(now)
    reasons = prescriber_reasons(ctx.prescriber_status) + _supply_reasons(ctx.request, program)
    patient = ctx.patient
    if patient.prescriber_id != ctx.prescriber_id:
        reasons.append(
            Reason(
                Code.PATIENT_PRESCRIBER_MISMATCH,
                Rule.R_AUTH_1,
                "The patient is not enrolled with this prescriber.",
                "Check `patient_id`: only the prescriber the patient is enrolled with may request an authorization "
                "for the patient.",
            )
        )
        return Decision.of(reasons, now)
    reasons += eligibility_reasons(patient.status, "authorization")
    reasons += prescriber_survey_reasons(patient.risk_category, dataclasses.asdict(ctx.request.prescriber_survey))
    reasons += evaluate_testing(patient.testing_inputs(), program, now, Purpose.AUTHORIZATION).reasons
    reasons += evaluate_survey(patient.risk_category, ctx.last_survey_at, program, now).reasons
    advice = clinical_advice(
        ctx.clinical, ClinicalRequest(ctx.request.days_supply, ctx.request.quantity), program, now, "prescriber"
    )
    reasons += advice.reasons
    return Decision.of(reasons, expires_at(now, patient.risk_category, program), advice.warnings)
