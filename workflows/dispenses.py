"""Dispense authorizations: the pharmacy's decision (R-DISP-1 to R-DISP-5,
R-PHA-1 to R-PHA-3, R-AUTH-3/4, R-PAT-2, R-PREG-3/4, R-COUNSEL-1) and the
life cycle of a dispense confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from .authorizations import AuthorizationStatus, effective_status
from .calendar import days_between
from .clock import ensure_utc
from .decisions import Decision, PatientFacts, eligibility_reasons
from .lifecycle import Lifecycle, Move, StateChange, command
from .participants import PharmacyStatus, effective_pharmacy_status
from .program import ProgramVersion
from .reasons import Reason
from .rules import Code, Rule
from .testing import Purpose, evaluate_testing

#: Prefix of dispense confirmation numbers ("REMS confirmation").
NUMBER_PREFIX = "RC"


class DispenseStatus(str, Enum):
    #: The confirmation is issued; the drug has not been handed over yet.
    CONFIRMED = "confirmed"
    #: Handed over (completed) within the confirmation window.
    DISPENSED = "dispensed"
    REVERSED = "reversed"
    LAPSED = "lapsed"
    #: Voided by a positive pregnancy test or a voided authorization (R-PREG-4).
    VOIDED = "voided"


def confirmation_expires_at(confirmed_at: datetime, program: ProgramVersion) -> datetime:
    """R-DISP-2: the hand-over window is exact elapsed hours."""
    return ensure_utc(confirmed_at) + timedelta(hours=program.confirmation_valid_hours)


def effective_dispense_status(status: DispenseStatus, expires: datetime, now: datetime) -> DispenseStatus:
    """A confirmation not completed by ``expires`` has lapsed, whatever the sweeps have mirrored."""
    if status is DispenseStatus.CONFIRMED and ensure_utc(now) >= expires:
        return DispenseStatus.LAPSED
    return status


class DispenseLifecycle(Lifecycle):
    """``confirmed → dispensed | reversed | lapsed | voided`` (all final).

    Constructed in the *effective* status, so completing a lapsed
    confirmation is an illegal transition whatever the stored status says.
    """

    SUBJECT = "dispense"
    STATUS = DispenseStatus

    @command("dispense.completed", Move(DispenseStatus.CONFIRMED, DispenseStatus.DISPENSED))
    def complete(self, now: datetime) -> StateChange:
        return self._fire(now)

    @command("dispense.reversed", Move(DispenseStatus.CONFIRMED, DispenseStatus.REVERSED))
    def reverse(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})

    @command("dispense.lapsed", Move(DispenseStatus.CONFIRMED, DispenseStatus.LAPSED))
    def lapse(self, now: datetime, details: dict[str, Any] | None = None) -> StateChange:
        return self._fire(now, {"reason": "confirmation window passed", **(details or {})})

    @command("dispense.voided", Move(DispenseStatus.CONFIRMED, DispenseStatus.VOIDED))
    def void(self, reason: str, now: datetime, details: dict[str, Any] | None = None) -> StateChange:
        return self._fire(now, {"reason": reason, **(details or {})})


@dataclass(frozen=True)
class PharmacyFacts:
    pharmacy_id: str
    status: PharmacyStatus
    certified_until: datetime | None


@dataclass(frozen=True)
class PharmacistFacts:
    user_id: str
    training_completed_at: datetime | None


@dataclass(frozen=True)
class AuthorizationFacts:
    """The authorization presented. ``confirmation_expires_at`` is the end of
    its live (stored ``confirmed``) dispense confirmation, if any."""

    number: str
    status: AuthorizationStatus
    issued_at: datetime
    expires_at: datetime
    rems_patient_id: str
    days_supply: int
    confirmation_expires_at: datetime | None


@dataclass(frozen=True)
class PriorDispense:
    """The patient's most recent completed dispense (R-DISP-3)."""

    dispensed_at: datetime
    days_supply: int


@dataclass(frozen=True)
class Counseling:
    """R-COUNSEL-1: the pharmacy's education and counseling checklist."""

    medication_guide_provided: bool
    checklist_completed: bool


@dataclass(frozen=True)
class DispenseRequest:
    authorization_number: str
    rems_patient_id: str
    days_supply: int
    quantity: int
    counseling: Counseling


@dataclass(frozen=True)
class DispenseContext:
    """Everything a dispense decision reads.

    ``authorization`` is None when no authorization has the number;
    ``patient`` and ``prior_dispense`` are read only for an authorization
    that belongs to the patient presented (a pharmacy learns nothing about
    a patient from a wrong number).
    """

    pharmacy: PharmacyFacts
    pharmacist: PharmacistFacts
    request: DispenseRequest
    authorization: AuthorizationFacts | None
    patient: PatientFacts | None
    prior_dispense: PriorDispense | None


def _participant_reasons(ctx: DispenseContext, now: datetime) -> list[Reason]:
    reasons = []
    status = effective_pharmacy_status(ctx.pharmacy.status.value, ctx.pharmacy.certified_until, now)
    if status == PharmacyStatus.EXPIRED.value:
        reasons.append(
            Reason(
                Code.PHARMACY_CERTIFICATION_EXPIRED,
                Rule.R_PHA_2,
                "The pharmacy's certification has expired; it must be renewed before dispensing.",
            )
        )
    elif status != PharmacyStatus.CERTIFIED.value:
        reasons.append(
            Reason(
                Code.PHARMACY_NOT_CERTIFIED,
                Rule.R_PHA_1,
                f"The pharmacy is '{status}'; only a certified pharmacy may dispense.",
            )
        )
    trained = ctx.pharmacist.training_completed_at
    if trained is None or trained > now:
        reasons.append(
            Reason(
                Code.PHARMACIST_NOT_TRAINED,
                Rule.R_PHA_3,
                "The dispensing pharmacist has not completed REMS training.",
            )
        )
    counseling = ctx.request.counseling
    if counseling.medication_guide_provided is not True or counseling.checklist_completed is not True:
        reasons.append(
            Reason(
                Code.COUNSELING_INCOMPLETE,
                Rule.R_COUNSEL_1,
                "The counseling checklist must be completed and the Medication Guide handed out.",
            )
        )
    return reasons


def _authorization_reasons(auth: AuthorizationFacts, request: DispenseRequest, now: datetime) -> list[Reason]:
    reasons = []
    status = effective_status(auth.status, auth.expires_at, auth.confirmation_expires_at, now)
    if status is AuthorizationStatus.VOIDED:
        reasons.append(
            Reason(
                Code.AUTHORIZATION_VOIDED,
                Rule.R_AUTH_3,
                "The authorization was voided; ask the prescriber for a new one.",
            )
        )
    elif status in (AuthorizationStatus.DISPENSED, AuthorizationStatus.CONFIRMED):
        why = "has been dispensed" if status is AuthorizationStatus.DISPENSED else "holds another dispense confirmation"
        reasons.append(
            Reason(
                Code.AUTHORIZATION_ALREADY_USED, Rule.R_DISP_5, f"The authorization {why}; it yields one dispense only."
            )
        )
    elif status is AuthorizationStatus.EXPIRED:
        reasons.append(
            Reason(
                Code.AUTHORIZATION_EXPIRED,
                Rule.R_AUTH_3,
                f"The authorization expired at {auth.expires_at.isoformat()}; ask the prescriber for a new one.",
            )
        )
    if request.days_supply > auth.days_supply:
        reasons.append(
            Reason(
                Code.DAYS_SUPPLY_EXCEEDED,
                Rule.R_DISP_4,
                f"{request.days_supply} days requested; the authorization is for {auth.days_supply} days at most.",
            )
        )
    return reasons


def _refill_reasons(prior: PriorDispense | None, program: ProgramVersion, now: datetime) -> list[Reason]:
    """R-DISP-3: at most ``refill_max_remaining_days`` calendar days of therapy may remain."""
    if prior is None:
        return []
    supply_ends = ensure_utc(prior.dispensed_at) + timedelta(days=prior.days_supply)
    remaining = days_between(now, supply_ends, program.tz)
    if remaining <= program.refill_max_remaining_days:
        return []
    return [
        Reason(
            Code.EARLY_REFILL,
            Rule.R_DISP_3,
            f"{remaining} days of therapy remain from the previous dispense; a new dispense is allowed "
            f"when {program.refill_max_remaining_days} days or fewer remain.",
        )
    ]


def decide_dispense(ctx: DispenseContext, program: ProgramVersion, now: datetime) -> Decision:
    """R-DISP-1: grant a dispense authorization only when every rule holds; else list every reason."""
    now = ensure_utc(now)
    reasons = _participant_reasons(ctx, now)
    auth = ctx.authorization
    if auth is None:
        reasons.append(Reason(Code.AUTHORIZATION_NOT_FOUND, Rule.R_AUTH_4, "No authorization has this number."))
    elif auth.rems_patient_id != ctx.request.rems_patient_id:
        reasons.append(
            Reason(
                Code.AUTHORIZATION_PATIENT_MISMATCH,
                Rule.R_AUTH_4,
                "The authorization was issued for another patient.",
            )
        )
    else:
        reasons += _authorization_reasons(auth, ctx.request, now)
        if ctx.patient is None:  # the service always reads the patient of a matching authorization
            raise ValueError("a dispense decision on a matching authorization needs the patient's facts")
        reasons += eligibility_reasons(ctx.patient.status, "dispense")
        reasons += evaluate_testing(ctx.patient.testing_inputs(), program, now, Purpose.DISPENSE).reasons
        reasons += _refill_reasons(ctx.prior_dispense, program, now)
    return Decision.of(reasons, confirmation_expires_at(now, program))
