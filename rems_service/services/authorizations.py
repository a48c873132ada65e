"""Prescription authorizations: the prescriber's decision (R-AUTH-1 to R-AUTH-4)
and what happens to an authorization afterwards (void).

Every use case reads and locks through the repository (lock order: patient,
then authorization, then dispense), decides with the pure functions of
``workflows`` and records the result in the same unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rems_service.db.models import Authorization, Patient
from rems_service.db.repository import AuthorizationInputs, AuthorizationListFilter, DecisionWrite, Duplicate
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.advisories import Acknowledgement
from workflows.audit import API_ORIGIN, Origin
from workflows.authorizations import (
    NUMBER_PREFIX,
    AuthorizationContext,
    AuthorizationRequest,
    AuthorizationStatus,
    PrescriberSurvey,
    decide_authorization,
    effective_status,
)
from workflows.calendar import local_date
from workflows.decisions import Decision
from workflows.errors import DomainError
from workflows.identifiers import new_reference_number
from workflows.program import Program, ProgramVersion
from workflows.rules import Code

from . import idempotency, patients
from .authorization_states import effective, void_locked
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
from .errors import NotFound, Unavailable, from_domain_error
from .paging import DEFAULT_LIMIT, Page, PageRequest, page_of, prescriber_owner
from .versions import version_at

NOT_FOUND = "Authorization not found."
#: The endpoint name idempotency keys are scoped to.
ENDPOINT = "authorizations"


@dataclass(frozen=True)
class AuthorizationCommand:
    """A prescriber's request for an authorization, as validated by a front."""

    patient_id: uuid.UUID
    days_supply: int
    quantity: int
    strength_mg: float
    prescriber_survey: PrescriberSurvey
    #: R-ACK-1: as sent ({rule, reason, prescriber_contacted_at?}); checked by ``request``.
    acknowledgements: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(
        cls,
        *,
        patient_id: uuid.UUID,
        days_supply: int,
        quantity: int,
        strength_mg: float,
        prescriber_survey: dict[str, Any],
        acknowledgements: list[dict[str, Any]] | None = None,
    ) -> AuthorizationCommand:
        return cls(
            patient_id=patient_id,
            days_supply=days_supply,
            quantity=quantity,
            strength_mg=float(strength_mg),
            prescriber_survey=PrescriberSurvey(
                counseled_on_risks=prescriber_survey.get("counseled_on_risks"),
                contraception_confirmed=prescriber_survey.get("contraception_confirmed"),
            ),
            acknowledgements=tuple(acknowledgements or ()),
        )

    def as_request(self) -> AuthorizationRequest:
        return AuthorizationRequest(
            days_supply=self.days_supply,
            quantity=self.quantity,
            strength_mg=self.strength_mg,
            prescriber_survey=self.prescriber_survey,
        )


def request(
    uow_factory: Callable[[], UnitOfWork],
    actor: Actor,
    now: datetime,
    program: Program,
    command: AuthorizationCommand,
    *,
    idempotency_key: str | None = None,
    request_body: Any = None,
    origin: Origin = API_ORIGIN,
) -> DecisionAnswer:
    """Decide a prescription authorization (R-AUTH-1) and record it, every reason listed.

    ``origin`` is the front the request came through (recorded on the decision
    and its audit entry).

    Raises ``NotFound`` for an unknown patient. A patient of another
    prescriber is a recorded denial (PATIENT_PRESCRIBER_MISMATCH).
    ``idempotency_key`` (with the validated ``request_body`` it guards)
    makes a repeated request return the first answer. ``Invalid`` for an acknowledgement
    whose prescriber contact is in the future.
    """
    acknowledgements(command.acknowledgements, now)

    def decide(claim: idempotency.Claim | None) -> DecisionAnswer:
        version = version_at(program, now)
        for _attempt in range(2):
            try:
                return _decide(uow_factory(), actor, now, version, command, claim, origin)
            except Duplicate:
                # The unique constraint refused the number drawn (a 75-bit collision): the unit of
                # work rolled back, so the decision is made again with another number.
                continue
        raise Unavailable("The authorization could not be recorded; nothing was recorded. Retry.")

    return counted(
        ENDPOINT, lambda: idempotency.run(uow_factory, actor, ENDPOINT, idempotency_key, request_body, decide)
    )


def _context(
    actor: Actor,
    inputs: AuthorizationInputs,
    command: AuthorizationCommand,
    acks: tuple[Acknowledgement, ...],
    today: date | None = None,
) -> AuthorizationContext:
    return AuthorizationContext(
        prescriber_id=str(actor.prescriber_id),
        prescriber_status=inputs.prescriber_status,
        patient=inputs.facts,
        last_survey_at=inputs.last_survey_at,
        request=command.as_request(),
        clinical=clinical_facts(inputs.clinical, acks, command.strength_mg, inputs.patient, today),
    )


def _decide(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    command: AuthorizationCommand,
    claim: idempotency.Claim | None,
    origin: Origin = API_ORIGIN,
) -> DecisionAnswer:
    """Gather the facts, decide, record: one unit of work."""
    with uow:
        repo = uow.repo
        inputs = repo.authorization_inputs(command.patient_id, actor.prescriber_id)
        if inputs is None:
            raise NotFound(patients.NOT_FOUND)
        acks = acknowledgements(command.acknowledgements, now)
        ctx = _context(actor, inputs, command, acks, local_date(now, version.tz))
        decision = decide_authorization(ctx, version, now)
        clinical, audit_only = clinical_details(decision, acks, actor, now)
        patient, decision_id = inputs.patient, uuid.uuid4()
        details: dict[str, Any] = {"days_supply": command.days_supply, **clinical}
        row = None
        if decision.approved:
            # A fresh number; the unique constraint is the check (``request`` decides again on a collision).
            row = _new_authorization(new_reference_number(NUMBER_PREFIX), patient, command, decision, decision_id, now)
        if row is not None:
            details.update(
                authorization_id=row.id, authorization_number=row.number, risk_category=patient.risk_category.value
            )
        write = DecisionWrite.of(
            actor=actor,
            kind="authorization",
            decision_id=decision_id,
            snapshot=ctx,
            decision=decision,
            program_version=version.version,
            now=now,
            subject={
                "patient_id": patient.id,
                "rems_patient_id": patient.rems_patient_id,
                "prescriber_id": actor.prescriber_id,
            },
            details=details,
            origin=origin,
            audit_only=audit_only,
            # Minimum necessary: after trying another prescriber's patient, the caller's
            # event names only what the caller sent (the patient_id), never the REMS id.
            withheld=frozenset({"rems_patient_id"}) if _mismatched(decision) else frozenset(),
        )
        record = repo.record_decision(
            write, event="authorization.issued" if decision.approved else "authorization.denied", issued=row
        )
        statuses = {"prescriber": inputs.prescriber_status.value, "patient": inputs.facts.status.value}
        result = DecisionResult.of(record, row, None, statuses, warnings=warning_bodies(decision))
        body = encode(result)
        idempotency.complete(repo, claim, body)
        uow.commit()
        return DecisionAnswer(body=body, result=result)


def _mismatched(decision: Decision) -> bool:
    return any(reason.code == Code.PATIENT_PRESCRIBER_MISMATCH for reason in decision.reasons)


def _new_authorization(
    number: str,
    patient: Patient,
    command: AuthorizationCommand,
    decision: Decision,
    decision_id: uuid.UUID,
    now: datetime,
) -> Authorization:
    """The authorization an approval issues (R-AUTH-3: valid until the decision says)."""
    assert decision.valid_until is not None, "an approval carries its validity"
    return Authorization(
        number=number,
        patient_id=patient.id,
        prescriber_id=patient.prescriber_id,
        rems_patient_id=patient.rems_patient_id,
        risk_category=patient.risk_category,
        days_supply=command.days_supply,
        quantity=command.quantity,
        strength_mg=command.strength_mg,
        status=AuthorizationStatus.ISSUED,
        issued_at=now,
        expires_at=decision.valid_until,
        status_changed_at=now,
        decision_id=decision_id,
    )


#: What a pharmacist sees of an authorization (minimum necessary, HIPAA 45 CFR 164.502(b)):
#: what dispensing needs — its number, status and validity, the patient's REMS id and risk
#: category, and the supply — never a clinical reason or the prescriber's free text.
PHARMACIST_FIELDS = (
    "number",
    "status",
    "rems_patient_id",
    "risk_category",
    "days_supply",
    "quantity",
    "strength_mg",
    "issued_at",
    "expires_at",
)


@dataclass(frozen=True)
class AuthorizationView:
    authorization: Authorization
    status: AuthorizationStatus
    #: Only ``PHARMACIST_FIELDS`` may be shown (the caller is a pharmacist).
    minimal: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The authorization as the caller may see it, with its status now."""
        found = {**self.authorization.model_dump(), "status": self.status}
        if self.minimal:
            return {key: found[key] for key in PHARMACIST_FIELDS}
        return found


def _visible(actor: Actor, row: Authorization | None) -> bool:
    """Its prescriber and any pharmacist (who must check it before dispensing); admins."""
    if row is None:
        return False
    if actor.is_admin or actor.role == UserRole.PHARMACIST.value:
        return True
    return actor.role == UserRole.PRESCRIBER.value and actor.prescriber_id == row.prescriber_id


def get(uow: UnitOfWork, actor: Actor, now: datetime, number: str) -> AuthorizationView:
    """The authorization with its status at ``now``."""
    with uow:
        row = uow.repo.find_authorization(number)
        if row is None or not _visible(actor, row):
            raise NotFound(NOT_FOUND)
        return AuthorizationView(
            row,
            effective(row, uow.repo.holding_dispense(row.id), now),
            minimal=actor.role == UserRole.PHARMACIST.value,
        )


def void(
    uow: UnitOfWork, actor: Actor, now: datetime, program: Program, number: str, reason: str | None
) -> AuthorizationView:
    """The prescriber voids an open authorization; a live confirmation on it is voided too.

    Raises ``NotFound`` (not the caller's) or ``Conflict`` (already used,
    expired or voided).
    """
    version = version_at(program, now)
    with uow:
        found = uow.repo.find_authorization(number)
        if found is None or not (
            actor.role == UserRole.PRESCRIBER.value and found.prescriber_id == actor.prescriber_id
        ):
            raise NotFound(NOT_FOUND)
        _, row = uow.repo.lock_authorization(found.id, found.patient_id)
        try:
            void_locked(uow.repo, actor, now, version, row, reason or "voided by the prescriber", {})
        except DomainError as exc:
            raise from_domain_error(exc) from None
        uow.commit()
        return AuthorizationView(row, row.status)


#: The authorizations listing's cursor tag and key: (``issued_at``, ``id``), newest first.
LISTING = "authorizations"
LISTING_KEY = (datetime, uuid.UUID)


@dataclass(frozen=True)
class AuthorizationItem:
    """An authorization in a list: its status at the list's time and, while a dispense
    confirmation holds it, when that confirmation's hand-over window ends."""

    authorization: Authorization
    status: AuthorizationStatus
    confirmation_expires_at: datetime | None


def listing(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    patient_id: uuid.UUID | None = None,
    status: str | None = None,
) -> Page[AuthorizationItem]:
    """A prescriber's own authorizations (every one for admins), newest first.

    ``status`` selects by the status at ``now``, computed in the query from the
    timestamps exactly as the single read computes it (an open authorization
    past ``expires_at`` is expired, one held by a confirmation whose window has
    not ended is confirmed), whatever the sweeps have mirrored yet. Pharmacists
    read an authorization by the number on the prescription but may not list
    them: a list would show every prescriber's. Another prescriber's
    ``patient_id`` lists nothing, like an unknown one.
    """
    request = PageRequest.of(cursor, limit, LISTING, LISTING_KEY)
    owner = prescriber_owner(actor, "authorizations")
    wanted = AuthorizationStatus(status) if status else None
    f = AuthorizationListFilter(**owner, patient_id=patient_id, status=wanted)
    with uow:
        rows = uow.repo.authorizations_page(f, now, request.after, request.fetch)
    items = []
    for row, window_end in rows:
        current = effective_status(row.status, row.expires_at, window_end, now)
        held_until = window_end if current is AuthorizationStatus.CONFIRMED else None
        items.append(AuthorizationItem(row, current, held_until))
    return page_of(items, request.limit, LISTING, lambda item: (item.authorization.issued_at, item.authorization.id))
