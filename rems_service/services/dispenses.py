"""Dispense authorizations (R-DISP-1 to R-DISP-5) and recorded dispenses.

R-DISP-5 holds twice over: the authorization row is locked while the
decision reads and writes (the repository's lock order: patient, then
authorization, then dispense), and a partial unique index lets one
authorization hold only one live or completed confirmation on every backend.
A request that still loses a race to the index is decided again and denied
AUTHORIZATION_ALREADY_USED; a second loss is a 503.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rems_service.db.models import Authorization, Dispense, Patient
from rems_service.db.repository import (
    AlreadyHeld,
    DecisionWrite,
    DispenseInputs,
    DispenseListFilter,
    authorization_subject,
    course_facts,
    dispense_subject,
    patient_subject,
)
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.advisories import Acknowledgement, hold_reasons
from workflows.audit import API_ORIGIN, Origin
from workflows.authorizations import AuthorizationLifecycle, AuthorizationStatus
from workflows.calendar import local_date
from workflows.decisions import Decision
from workflows.dispenses import (
    NUMBER_PREFIX,
    AuthorizationFacts,
    Counseling,
    DispenseContext,
    DispenseLifecycle,
    DispenseRequest,
    DispenseStatus,
    decide_dispense,
    effective_dispense_status,
    participant_reasons,
    participant_statuses,
)
from workflows.errors import DomainError
from workflows.identifiers import new_reference_number, normalize_reference_number
from workflows.lifecycle import StateChange
from workflows.patients import PatientLifecycle, PatientStatus
from workflows.program import Program, ProgramVersion
from workflows.rules import Code, Rule

from . import idempotency
from .authorization_states import effective, settle
from .decisions import (
    DecisionAnswer,
    DecisionResult,
    acknowledgements,
    clinical_details,
    clinical_facts,
    counted,
    encode,
    warning_bodies,
)
from .errors import Conflict, Forbidden, NotFound, Unavailable, from_domain_error
from .paging import DEFAULT_LIMIT, Page, PageRequest, page_of
from .reminders import refresh_reminders
from .versions import version_at

NOT_FOUND = "Dispense not found."
#: The endpoint name idempotency keys are scoped to.
ENDPOINT = "dispenses"


def command(
    *, authorization_number: str, rems_patient_id: str, days_supply: int, quantity: int, counseling: dict[str, Any]
) -> DispenseRequest:
    """The pharmacy's request as the decision reads it (numbers and ids normalized)."""
    return DispenseRequest(
        authorization_number=normalize_reference_number(authorization_number),
        rems_patient_id=rems_patient_id.strip().upper(),
        days_supply=days_supply,
        quantity=quantity,
        counseling=Counseling(
            medication_guide_provided=counseling["medication_guide_provided"],
            checklist_completed=counseling["checklist_completed"],
        ),
    )


def request(
    uow_factory: Callable[[], UnitOfWork],
    actor: Actor,
    now: datetime,
    program: Program,
    dispense_request: DispenseRequest,
    *,
    idempotency_key: str | None = None,
    request_body: Any = None,
    origin: Origin = API_ORIGIN,
    acknowledgements_sent: list[dict[str, Any]] | None = None,
) -> DecisionAnswer:
    """Decide a dispense authorization (R-DISP-1) and record it, every reason listed.

    ``origin`` is the front the request came through (recorded on the decision
    and its audit entry). ``acknowledgements_sent`` are the pharmacist's R-ACK-1
    acknowledgements (``Invalid`` for a prescriber contact in the future).

    If the decision loses a race to R-DISP-5's unique index, it is decided
    again from fresh reads (and so denied AUTHORIZATION_ALREADY_USED); a
    second loss is a 503 (``Unavailable``), never an approval.
    """

    acks = acknowledgements(acknowledgements_sent, now)

    def decide(claim: idempotency.Claim | None) -> DecisionAnswer:
        version = version_at(program, now)  # after the claim: a replay needs no program in force
        for _attempt in range(2):
            try:
                return _decide(uow_factory(), actor, now, version, dispense_request, claim, origin, acks)
            except AlreadyHeld:
                continue  # the unit of work rolled back; decide again on what the winner wrote
        raise Unavailable(
            "The dispense could not be decided safely under concurrent requests; nothing was recorded. Retry."
        )

    return counted(
        ENDPOINT, lambda: idempotency.run(uow_factory, actor, ENDPOINT, idempotency_key, request_body, decide)
    )


def _context(
    inputs: DispenseInputs,
    dispense_request: DispenseRequest,
    acks: tuple[Acknowledgement, ...] = (),
    today: date | None = None,
) -> DispenseContext:
    auth, holding = inputs.authorization, inputs.holding
    return DispenseContext(
        pharmacy=inputs.pharmacy,
        pharmacist=inputs.pharmacist,
        request=dispense_request,
        authorization=None
        if auth is None
        else AuthorizationFacts(
            number=auth.number,
            status=auth.status,
            issued_at=auth.issued_at,
            expires_at=auth.expires_at,
            rems_patient_id=auth.rems_patient_id,
            days_supply=auth.days_supply,
            confirmation_expires_at=holding.confirmation_expires_at if holding else None,
            quantity=auth.quantity,
            confirmation_pharmacy_id=str(holding.pharmacy_id) if holding else None,
        ),
        patient=inputs.facts,
        prior_dispense=inputs.prior,
        clinical=clinical_facts(
            inputs.clinical, acks, auth.strength_mg if auth is not None else None, inputs.patient, today
        ),
    )


def _decide(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    dispense_request: DispenseRequest,
    claim: idempotency.Claim | None,
    origin: Origin = API_ORIGIN,
    acks: tuple[Acknowledgement, ...] = (),
) -> DecisionAnswer:
    """Gather the facts, decide, record: one unit of work. ``AlreadyHeld`` when a
    concurrent confirmation won R-DISP-5's index (everything here rolls back)."""
    with uow:
        repo = uow.repo
        inputs = repo.dispense_inputs(
            dispense_request.authorization_number, dispense_request.rems_patient_id, actor.pharmacy_id, actor.user_id
        )
        ctx = _context(inputs, dispense_request, acks, local_date(now, version.tz))
        decision = decide_dispense(ctx, version, now)
        clinical, audit_only = clinical_details(decision, acks, actor, now)
        decision_id = uuid.uuid4()
        subject: dict[str, Any] = {
            "pharmacy_id": actor.pharmacy_id,
            "authorization_number": dispense_request.authorization_number,
        }
        if inputs.patient is not None and inputs.authorization is not None:
            subject.update(
                patient_id=inputs.patient.id,
                rems_patient_id=inputs.patient.rems_patient_id,
                prescriber_id=inputs.authorization.prescriber_id,
            )
        else:
            # The audit entry alone (not the event, not the response) names the patient presented
            # and, on a patient mismatch, the authorization's: REMS ids only, found by either.
            subject["presented_rems_patient_id"] = dispense_request.rems_patient_id
            if inputs.authorization is not None:
                subject["authorization_rems_patient_id"] = inputs.authorization.rems_patient_id
        details: dict[str, Any] = {"days_supply": dispense_request.days_supply, **clinical}
        row = _confirm(uow, actor, now, version, inputs, dispense_request, decision, decision_id, details)
        write = DecisionWrite.of(
            actor=actor,
            kind="dispense",
            decision_id=decision_id,
            snapshot=ctx,
            decision=decision,
            program_version=version.version,
            now=now,
            subject=subject,
            details=details,
            origin=origin,
            audit_only=audit_only,
        )
        # R-DISP-5's index: AlreadyHeld (here or at the commit) if another confirmation holds it.
        record = repo.record_decision(
            write,
            event="dispense.approved" if decision.approved else "dispense.denied",
            confirmed=inputs.authorization if row is not None else None,
            issued=row,
        )
        statuses = participant_statuses(ctx, now)
        result = DecisionResult.of(
            record,
            inputs.authorization if row is not None else None,
            row,
            statuses,
            warnings=warning_bodies(decision),
        )
        body = encode(result)
        idempotency.complete(repo, claim, body)
        uow.commit()
        return DecisionAnswer(body=body, result=result)


def _confirm(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    inputs: DispenseInputs,
    dispense_request: DispenseRequest,
    decision: Decision,
    decision_id: uuid.UUID,
    details: dict[str, Any],
) -> Dispense | None:
    """For an approval: settle a lapsed confirmation, confirm the authorization and build the
    confirmation row (inserted after the decision row it refers to); None for a denial.
    The decision's own audit entry records the authorization's change (``details``)."""
    auth, patient = inputs.authorization, inputs.patient
    if not decision.approved:
        return None
    # An approval has read a certified pharmacy and a trained pharmacist: the caller is one.
    assert auth is not None and patient is not None and decision.valid_until is not None
    assert actor.pharmacy_id is not None and actor.user_id is not None
    settle(uow.repo, actor, inputs.holding, now, version)  # read under the authorization's lock
    # A 75-bit collision would violate the number's unique constraint: the decision is then made again.
    number = new_reference_number(NUMBER_PREFIX)
    change = AuthorizationLifecycle(effective(auth, None, now).value).confirm(number, now)
    # Stored with the decision, before its audit entry (bench/README.md, "Write path").
    auth.status, auth.status_changed_at, auth.status_reason = AuthorizationStatus(change.to_state), now, None
    row = Dispense(
        confirmation_number=number,
        authorization_id=auth.id,
        pharmacy_id=actor.pharmacy_id,
        pharmacist_user_id=actor.user_id,
        patient_id=patient.id,
        rems_patient_id=patient.rems_patient_id,
        days_supply=dispense_request.days_supply,
        quantity=dispense_request.quantity,
        status=DispenseStatus.CONFIRMED,
        confirmed_at=now,
        confirmation_expires_at=decision.valid_until,
        status_changed_at=now,
        decision_id=decision_id,
    )
    details.update(
        dispense_id=row.id,
        confirmation_number=row.confirmation_number,
        authorization_id=auth.id,
        authorization_from_state=change.from_state,
        authorization_to_state=change.to_state,
    )
    return row


def _find(uow: UnitOfWork, actor: Actor, number: str) -> Dispense:
    """The dispense numbered ``number`` if the caller may see it (its pharmacy, admins)."""
    row = uow.repo.find_dispense(number)
    if row is None or not (
        actor.is_admin or (actor.role == UserRole.PHARMACIST.value and actor.pharmacy_id == row.pharmacy_id)
    ):
        raise NotFound(NOT_FOUND)
    return row


@dataclass(frozen=True)
class DispenseView:
    dispense: Dispense
    status: DispenseStatus
    authorization_number: str


def get(uow: UnitOfWork, actor: Actor, now: datetime, number: str) -> DispenseView:
    """The dispense with its status at ``now`` (its pharmacy's pharmacists, admins)."""
    with uow:
        row = _find(uow, actor, number)
        auth = uow.repo.get(Authorization, row.authorization_id)
        assert auth is not None, "a dispense's authorization is never deleted"
        return DispenseView(row, effective_dispense_status(row.status, row.confirmation_expires_at, now), auth.number)


def _locked(uow: UnitOfWork, actor: Actor, number: str) -> tuple[Patient, Authorization, Dispense]:
    if actor.role != UserRole.PHARMACIST.value:
        raise NotFound(NOT_FOUND)
    return uow.repo.lock_dispense(_find(uow, actor, number))


def _tagged(change: StateChange, origin: Origin) -> StateChange:
    """A change made through a standard front names its channel in its audit entry (an API
    change stays as it always was)."""
    if origin == API_ORIGIN:
        return change
    return dataclasses.replace(change, details={**change.details, **origin.as_details()})


def complete(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, number: str, origin: Origin = API_ORIGIN
) -> DispenseView:
    """Record the hand-over (R-DISP-2): within the confirmation window, to an eligible patient.

    The authorization becomes ``dispensed``; a patient's first dispense
    starts therapy (R-PAT-2). Raises ``NotFound`` (another pharmacy's) or
    ``Conflict`` (CONFIRMATION_EXPIRED, PATIENT_NOT_ELIGIBLE, or not
    ``confirmed``).
    """
    version = version_at(program, now)
    with uow:
        patient, auth, row = _locked(uow, actor, number)
        status = effective_dispense_status(row.status, row.confirmation_expires_at, now)
        if status is DispenseStatus.LAPSED:
            raise Conflict(
                f"CONFIRMATION_EXPIRED: the drug must be handed over within {version.confirmation_valid_hours} "
                f"hours of the confirmation; it lapsed at {row.confirmation_expires_at.isoformat()} "
                f"({Rule.R_DISP_2.value}).",
                {"confirmation_number": ["CONFIRMATION_EXPIRED"]},
            )
        if status is DispenseStatus.CONFIRMED:
            _refuse_unless_participants_hold(uow, actor, now)
            _refuse_while_the_course_is_held(uow, patient.id)
        patient_machine = PatientLifecycle(patient.status.value, patient.therapy_started_at)
        if status is DispenseStatus.CONFIRMED and not patient_machine.eligible:
            raise Conflict(
                f"PATIENT_NOT_ELIGIBLE: the patient is '{patient.status.value}'; the drug may not be handed over "
                f"({Rule.R_PAT_2.value}).",
                {"patient": ["PATIENT_NOT_ELIGIBLE"]},
            )
        try:
            change = DispenseLifecycle(status.value).complete(now)
            auth_change = AuthorizationLifecycle(effective(auth, row, now).value).dispense(row.confirmation_number, now)
        except DomainError as exc:
            raise from_domain_error(exc) from None
        row.dispensed_at = now
        uow.repo.record_change(actor, row, _tagged(change, origin), dispense_subject(row), version.version)
        uow.repo.record_change(actor, auth, auth_change, authorization_subject(auth), version.version)
        if patient.status is PatientStatus.ENROLLED:
            _start_therapy(uow, actor, now, version, patient, patient_machine)
        uow.commit()
        return DispenseView(row, row.status, auth.number)


def _refuse_while_the_course_is_held(uow: UnitOfWork, patient_id: uuid.UUID) -> None:
    """R-CYCLE-3 at hand-over: a course the prescriber put on hold or stopped after the
    confirmation stops the hand-over too (``Conflict`` naming TREATMENT_ON_HOLD). A patient
    without a course is not affected."""
    course = uow.repo.current_course(patient_id)
    if course is None:
        return
    reasons = hold_reasons(course_facts(course))
    if reasons:
        raise Conflict(
            f"TREATMENT_ON_HOLD: {reasons[0].message} The drug may not be handed over "
            f"({Rule.R_CYCLE_3.value}). {reasons[0].next_step or ''}".strip(),
            {"confirmation_number": ["TREATMENT_ON_HOLD"]},
        )


def _refuse_unless_participants_hold(uow: UnitOfWork, actor: Actor, now: datetime) -> None:
    """R-DISP-2: only a trained pharmacist (R-PHA-3) of a pharmacy certified at that moment
    (R-PHA-1/2) records a hand-over; ``Conflict`` naming every failing rule otherwise. Read
    fresh: a pharmacy suspended after its confirmation may not hand over."""
    pharmacy, pharmacist = uow.repo.pharmacy_facts(actor.pharmacy_id, actor.user_id)
    reasons = participant_reasons(pharmacy, pharmacist, now)
    if reasons:
        field = {Code.PHARMACIST_NOT_TRAINED: "pharmacist"}
        errors: dict[str, list[str]] = {}
        for reason in reasons:
            errors.setdefault(field.get(reason.code, "pharmacy"), []).append(reason.code.value)
        raise Conflict(
            " ".join(f"{r.code.value}: {r.message} ({r.rule.value}) {r.next_step}" for r in reasons),
            errors,
        )


def _start_therapy(
    uow: UnitOfWork, actor: Actor, now: datetime, version: ProgramVersion, patient: Patient, machine: PatientLifecycle
) -> None:
    """R-PAT-2: the first hand-over starts therapy (and so the next test's clock)."""
    therapy = machine.start_therapy(now)
    patient.therapy_started_at = machine.therapy_started_at
    uow.repo.record_change(actor, patient, therapy, patient_subject(patient), version.version)
    refresh_reminders(uow.repo, patient, version, now)


def reverse(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    number: str,
    reason: str | None,
    origin: Origin = API_ORIGIN,
) -> DispenseView:
    """Reverse a confirmation not yet handed over; the authorization is usable again
    while it is still valid (R-DISP-2). Raises ``NotFound`` or ``Conflict``."""
    version = version_at(program, now)
    with uow:
        _patient, auth, row = _locked(uow, actor, number)
        status = effective_dispense_status(row.status, row.confirmation_expires_at, now)
        try:
            change = DispenseLifecycle(status.value).reverse(reason or "reversed by the pharmacy", now)
            auth_change = AuthorizationLifecycle(effective(auth, row, now).value).release(
                "dispense confirmation reversed", now
            )
        except DomainError as exc:
            raise from_domain_error(exc) from None
        uow.repo.record_change(actor, row, _tagged(change, origin), dispense_subject(row), version.version)
        uow.repo.record_change(actor, auth, auth_change, authorization_subject(auth), version.version)
        uow.commit()
        return DispenseView(row, row.status, auth.number)


#: The dispenses listings' cursor tags (one per sort order) and key: a time, then ``id``.
LISTING_BY_WINDOW = "dispenses.window"
LISTING_NEWEST = "dispenses.newest"
LISTING_KEY = (datetime, uuid.UUID)


def listing(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    status: str | None = None,
) -> Page[DispenseView]:
    """A pharmacy's dispenses, for its pharmacists (every pharmacy's for admins).

    ``status`` selects by the status at ``now`` (a confirmation whose window has
    ended is ``lapsed``, whatever the sweeps have mirrored yet). ``confirmed`` is
    the hand-over queue: live confirmations by window end, the one with the least
    time left first; every other selection is newest first (``confirmed_at``).
    """
    f_status = DispenseStatus(status) if status else None
    if actor.is_admin:
        f = DispenseListFilter(everyone=True, status=f_status)
    elif actor.role == UserRole.PHARMACIST.value and actor.pharmacy_id is not None:
        f = DispenseListFilter(pharmacy_id=actor.pharmacy_id, status=f_status)
    else:
        raise Forbidden(f"The {actor.role} role may not list dispenses.")
    tag = LISTING_BY_WINDOW if f.by_window else LISTING_NEWEST
    request = PageRequest.of(cursor, limit, tag, LISTING_KEY)
    with uow:
        rows = uow.repo.dispenses_page(f, now, request.after, request.fetch)
    views = [
        DispenseView(row, effective_dispense_status(row.status, row.confirmation_expires_at, now), number)
        for row, number in rows
    ]

    def key(view: DispenseView) -> tuple[datetime, uuid.UUID]:
        row = view.dispense
        return (row.confirmation_expires_at if f.by_window else row.confirmed_at, row.id)

    return page_of(views, request.limit, tag, key)


def recent_decisions(uow: UnitOfWork, actor: Actor, limit: int = DEFAULT_LIMIT) -> list[DecisionResult]:
    """The pharmacy's newest dispense decisions, approved and denied, newest first (its pharmacists)."""
    if actor.role != UserRole.PHARMACIST.value or actor.pharmacy_id is None:
        raise Forbidden(f"The {actor.role} role may not list a pharmacy's decisions.")
    with uow:
        rows = uow.repo.recent_decisions("dispense", actor.pharmacy_id, limit)
    return [dataclasses.replace(DecisionResult.of(row), rems_patient_id=row.rems_patient_id) for row in rows]
