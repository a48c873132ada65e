"""Dispense authorizations: the pharmacy's decision (R-DISP-1 to R-DISP-6,
R-PHA-1 to R-PHA-3, R-AUTH-3/4, R-PAT-2, R-PREG-3/4, R-COUNSEL-1) and the
life cycle of a dispense confirmation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any, ClassVar

from .advisories import ClinicalFacts, ClinicalRequest
from .authorizations import NUMBER_PREFIX as AUTHORIZATION_PREFIX
from .authorizations import AuthorizationStatus, effective_status
from .calendar import days_between, instant_text, local_date
from .clock import ensure_utc
from .decisions import Decision, PatientFacts, clinical_advice, eligibility_reasons
from .identifiers import number_problem
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
    its live (stored ``confirmed``) dispense confirmation, if any, and
    ``confirmation_pharmacy_id`` the pharmacy holding that confirmation.

    ``quantity`` (R-DISP-6) and ``confirmation_pharmacy_id`` came later than
    the other fields: snapshots stored before them lack them and load as None;
    a None quantity skips R-DISP-6, so an old decision replays unchanged.
    """

    number: str
    status: AuthorizationStatus
    issued_at: datetime
    expires_at: datetime
    rems_patient_id: str
    days_supply: int
    confirmation_expires_at: datetime | None
    #: R-DISP-6's authorized quantity: None only in snapshots stored before it was read.
    quantity: int | None
    confirmation_pharmacy_id: str | None

    #: Fields added after decisions were recorded: what a snapshot that lacks them loads as.
    LEGACY_DEFAULTS: ClassVar[Mapping[str, Any]] = {"quantity": None, "confirmation_pharmacy_id": None}


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
    #: CLINICAL_RULES.md, read with the patient (so only for a matching authorization); None for a
    #: patient without a course and in snapshots stored before the layer.
    clinical: ClinicalFacts | None = None

    LEGACY_DEFAULTS: ClassVar[Mapping[str, Any]] = {"clinical": None}


_PHARMACY_NEXT = {
    PharmacyStatus.PENDING.value: (
        "The pharmacy's authorized representative must complete certification (attest that staff are trained, "
        "procedures are in place and records are kept); then ask again."
    ),
    PharmacyStatus.SUSPENDED.value: "A program administrator must reinstate the pharmacy's certification.",
    PharmacyStatus.DECERTIFIED.value: (
        "Decertification is final: the patient must fill the prescription at another certified pharmacy."
    ),
}


def participant_reasons(pharmacy: PharmacyFacts, pharmacist: PharmacistFacts, now: datetime) -> list[Reason]:
    """R-PHA-1/2/3 at ``now``: the pharmacy certified, the pharmacist trained. They hold for the
    dispense decision and again for the hand-over (R-DISP-2)."""
    reasons = []
    status = effective_pharmacy_status(pharmacy.status.value, pharmacy.certified_until, now)
    if status == PharmacyStatus.EXPIRED.value:
        until = pharmacy.certified_until
        reasons.append(
            Reason(
                Code.PHARMACY_CERTIFICATION_EXPIRED,
                Rule.R_PHA_2,
                "The pharmacy's certification has expired; it must be renewed before dispensing.",
                "The pharmacy's authorized representative must renew the certification with the program"
                + (f" (it ended {instant_text(until)})" if until is not None else "")
                + "; until then another certified pharmacy must dispense.",
            )
        )
    elif status != PharmacyStatus.CERTIFIED.value:
        reasons.append(
            Reason(
                Code.PHARMACY_NOT_CERTIFIED,
                Rule.R_PHA_1,
                f"The pharmacy is '{status}'; only a certified pharmacy may dispense.",
                _PHARMACY_NEXT.get(status, "The pharmacy must be certified by the program before dispensing."),
            )
        )
    trained = pharmacist.training_completed_at
    if trained is None or trained > now:
        reasons.append(
            Reason(
                Code.PHARMACIST_NOT_TRAINED,
                Rule.R_PHA_3,
                "The dispensing pharmacist has not completed REMS training.",
                (
                    "A pharmacist who has completed REMS training must request the dispense, or this pharmacist "
                    "completes the training and a program administrator records it"
                    if trained is None
                    else f"This pharmacist's training counts from {instant_text(trained)}; ask again then, or let a "
                    "trained pharmacist request the dispense"
                )
                + ".",
            )
        )
    return reasons


def _participant_reasons(ctx: DispenseContext, now: datetime) -> list[Reason]:
    reasons = participant_reasons(ctx.pharmacy, ctx.pharmacist, now)
    counseling = ctx.request.counseling
    missing = [
        f"`counseling.{name}: true`"
        for name, value in (
            ("medication_guide_provided", counseling.medication_guide_provided),
            ("checklist_completed", counseling.checklist_completed),
        )
        if value is not True
    ]
    if missing:
        reasons.append(
            Reason(
                Code.COUNSELING_INCOMPLETE,
                Rule.R_COUNSEL_1,
                "The counseling checklist must be completed and the Medication Guide handed out.",
                "Complete the education and counseling checklist with the patient and hand out the Medication "
                f"Guide, then send {' and '.join(missing)}.",
            )
        )
    return reasons


def _already_used(auth: AuthorizationFacts, status: AuthorizationStatus, pharmacy_id: str | None) -> Reason:
    """R-DISP-5: who holds the authorization and until when, without naming another pharmacy."""
    if status is AuthorizationStatus.DISPENSED:
        return Reason(
            Code.AUTHORIZATION_ALREADY_USED,
            Rule.R_DISP_5,
            "The authorization has been dispensed; it yields one dispense only.",
            "A new supply needs a new authorization: ask the prescriber for one.",
        )
    lapses = auth.confirmation_expires_at
    if auth.confirmation_pharmacy_id is None:
        holder = "A dispense confirmation"
    elif auth.confirmation_pharmacy_id == pharmacy_id:
        holder = "A confirmation of your own pharmacy"
    else:
        holder = "Another pharmacy's confirmation"
    if lapses is None:  # a confirmed status without a live confirmation reads as issued; kept for safety
        step = "Ask the prescriber whether the authorization is still open."
    elif lapses >= auth.expires_at:
        step = (
            f"{holder} holds it until {instant_text(lapses)}, after the authorization itself expires "
            f"({instant_text(auth.expires_at)}): ask the prescriber for a new authorization."
        )
    elif auth.confirmation_pharmacy_id == pharmacy_id:
        step = (
            f"{holder} holds it until {instant_text(lapses)}: complete the hand-over or reverse that "
            "confirmation before asking again."
        )
    else:
        step = (
            f"{holder} holds it until {instant_text(lapses)}; if the drug is not handed over by then, the "
            f"authorization is free again until it expires at {instant_text(auth.expires_at)}."
        )
    return Reason(
        Code.AUTHORIZATION_ALREADY_USED,
        Rule.R_DISP_5,
        "The authorization holds another dispense confirmation; it yields one dispense only.",
        step,
    )


def authorization_status_reasons(auth: AuthorizationFacts, pharmacy_id: str | None, now: datetime) -> list[Reason]:
    """R-AUTH-3, R-DISP-5: whether the authorization can be dispensed at ``now`` (voided, used,
    held by a confirmation, expired); ``pharmacy_id`` is the asking pharmacy's, if any."""
    reasons = []
    status = effective_status(auth.status, auth.expires_at, auth.confirmation_expires_at, now)
    if status is AuthorizationStatus.VOIDED:
        reasons.append(
            Reason(
                Code.AUTHORIZATION_VOIDED,
                Rule.R_AUTH_3,
                "The authorization was voided; ask the prescriber for a new one.",
                "Do not dispense on this number; the prescriber must issue a new authorization.",
            )
        )
    elif status in (AuthorizationStatus.DISPENSED, AuthorizationStatus.CONFIRMED):
        reasons.append(_already_used(auth, status, pharmacy_id))
    elif status is AuthorizationStatus.EXPIRED:
        reasons.append(
            Reason(
                Code.AUTHORIZATION_EXPIRED,
                Rule.R_AUTH_3,
                f"The authorization expired at {auth.expires_at.isoformat()}; ask the prescriber for a new one.",
                f"The authorization expired at {instant_text(auth.expires_at)}: the prescriber must issue a new one.",
            )
        )
    return reasons


def _authorization_reasons(
    auth: AuthorizationFacts, request: DispenseRequest, pharmacy_id: str, now: datetime
) -> list[Reason]:
    reasons = authorization_status_reasons(auth, pharmacy_id, now)
    if request.days_supply > auth.days_supply:
        reasons.append(
            Reason(
                Code.DAYS_SUPPLY_EXCEEDED,
                Rule.R_DISP_4,
                f"{request.days_supply} days requested; the authorization is for {auth.days_supply} days at most.",
                f"Set `days_supply` to {auth.days_supply} or less, as authorized.",
            )
        )
    if auth.quantity is not None and request.quantity > auth.quantity:
        reasons.append(
            Reason(
                Code.QUANTITY_EXCEEDED,
                Rule.R_DISP_6,
                f"{request.quantity} capsules requested; the authorization is for {auth.quantity} capsules at most.",
                f"Set `quantity` to {auth.quantity} or less, as authorized.",
            )
        )
    return reasons


def refill_allowed_on(prior: PriorDispense, program: ProgramVersion) -> tuple[date, date]:
    """R-DISP-3: (the first day a new dispense is allowed, the day the previous supply ends),
    calendar days in the program zone."""
    supply_ends = local_date(ensure_utc(prior.dispensed_at) + timedelta(days=prior.days_supply), program.tz)
    return supply_ends - timedelta(days=program.refill_max_remaining_days), supply_ends


def _refill_reasons(prior: PriorDispense | None, program: ProgramVersion, now: datetime) -> list[Reason]:
    """R-DISP-3: at most ``refill_max_remaining_days`` calendar days of therapy may remain."""
    if prior is None:
        return []
    supply_ends = ensure_utc(prior.dispensed_at) + timedelta(days=prior.days_supply)
    remaining = days_between(now, supply_ends, program.tz)
    if remaining <= program.refill_max_remaining_days:
        return []
    allowed_on, ends_on = refill_allowed_on(prior, program)
    return [
        Reason(
            Code.EARLY_REFILL,
            Rule.R_DISP_3,
            f"{remaining} days of therapy remain from the previous dispense; a new dispense is allowed "
            f"when {program.refill_max_remaining_days} days or fewer remain.",
            f"A refill is allowed from {allowed_on.isoformat()} ({program.refill_max_remaining_days} days before "
            f"the previous supply ends on {ends_on.isoformat()}); ask again then.",
        )
    ]


def _not_found(request: DispenseRequest) -> Reason:
    """R-AUTH-4: tell a mistyped number from a well-formed one that no authorization has."""
    if number_problem(request.authorization_number, AUTHORIZATION_PREFIX):
        step = (
            f"`authorization_number` {request.authorization_number!r} is not a number of the form "
            f"{AUTHORIZATION_PREFIX}-XXXXX-XXXXX-XXXXX (15 letters and digits in groups of five): check it against "
            "the prescription for a typing error."
        )
    else:
        step = (
            "`authorization_number` is well formed but no authorization has it: check every character against "
            "the prescription, or ask the prescriber for the number."
        )
    return Reason(Code.AUTHORIZATION_NOT_FOUND, Rule.R_AUTH_4, "No authorization has this number.", step)


def participant_statuses(ctx: DispenseContext, now: datetime) -> dict[str, str]:
    """The pharmacy's status at ``now`` (R-PHA-2: past ``certified_until`` it is expired) and,
    when read, the patient's: what the standard fronts tell a deactivated participant by."""
    statuses = {"pharmacy": effective_pharmacy_status(ctx.pharmacy.status.value, ctx.pharmacy.certified_until, now)}
    if ctx.patient is not None:
        statuses["patient"] = ctx.patient.status.value
    return statuses


def decide_dispense(ctx: DispenseContext, program: ProgramVersion, now: datetime) -> Decision:
    """R-DISP-1: grant a dispense authorization only when every rule holds; else list every reason."""
    now = ensure_utc(now)
    reasons = _participant_reasons(ctx, now)
    auth = ctx.authorization
    if auth is None:
        reasons.append(_not_found(ctx.request))
    elif auth.rems_patient_id != ctx.request.rems_patient_id:
        reasons.append(
            Reason(
                Code.AUTHORIZATION_PATIENT_MISMATCH,
                Rule.R_AUTH_4,
                "The authorization was issued for another patient.",
                "Check `rems_patient_id` and `authorization_number` against the prescription and the patient's "
                "REMS card; an authorization can be dispensed only to its own patient.",
            )
        )
    else:
        reasons += _authorization_reasons(auth, ctx.request, ctx.pharmacy.pharmacy_id, now)
        if ctx.patient is None:  # the service always reads the patient of a matching authorization
            raise ValueError("a dispense decision on a matching authorization needs the patient's facts")
        reasons += eligibility_reasons(ctx.patient.status, "dispense")
        reasons += evaluate_testing(ctx.patient.testing_inputs(), program, now, Purpose.DISPENSE).reasons
        reasons += _refill_reasons(ctx.prior_dispense, program, now)
        advice = clinical_advice(
            ctx.clinical, ClinicalRequest(ctx.request.days_supply, ctx.request.quantity), program, now, "pharmacist"
        )
        return Decision.of(reasons + list(advice.reasons), confirmation_expires_at(now, program), advice.warnings)
    return Decision.of(reasons, confirmation_expires_at(now, program))
