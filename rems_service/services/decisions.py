"""What an authorization or dispense decision answers, and replaying recorded decisions.

A decision is stored three ways in one transaction (the repository's
``record_decision``): a ``decisions`` row holding the snapshot it read, an
audit entry digesting that snapshot, and an outbox event. Its answer is a
``DecisionResult`` of plain values; ``DecisionResult.body()`` is the Decision
of API.md, whose JSON text (``encode``) the idempotency store keeps byte for
byte. ``replay`` decides again from the stored snapshot under the recorded
program version and says whether the outcome is the same.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rems_service import metrics
from rems_service.db.models import AuditEntry, Authorization, DecisionRecord, Dispense, Patient
from rems_service.db.repository import DECISION_ACTIONS, ClinicalInputs, RecordedDecision
from rems_service.db.uow import UnitOfWork
from workflows import snapshots
from workflows.actors import Actor
from workflows.advisories import Acknowledgement, ClinicalFacts, age_in_years
from workflows.audit import digest
from workflows.clock import isoformat_utc
from workflows.decisions import Decision
from workflows.dispenses import DispenseContext, participant_statuses
from workflows.program import Program
from workflows.replay import ReplayResult, compare, summary
from workflows.replay import replay as replay_decision
from workflows.rules import Rule

from .errors import Invalid, NotFound

#: A reason's fields in the Decision, in order. ``next_step`` is absent from decisions
#: recorded before it existed (their stored reasons are shown as recorded).
REASON_FIELDS = ("code", "rule", "message", "next_step")


@dataclass(frozen=True)
class DecisionResult:
    """A recorded decision as plain values (API.md "Decision"). Approved
    authorizations carry ``authorization_number``, ``rems_patient_id``,
    ``risk_category``, ``days_supply`` and ``expires_at``; approved dispenses
    carry ``authorization_number``, ``rems_patient_id``, ``confirmation_number``,
    ``confirmation_expires_at`` and ``days_supply``."""

    id: uuid.UUID
    decision: str
    reasons: tuple[dict[str, str], ...]
    evaluated_at: datetime
    program_version: str
    audit_seq: int
    authorization_number: str | None = None
    risk_category: str | None = None
    rems_patient_id: str | None = None
    days_supply: int | None = None
    expires_at: datetime | None = None
    confirmation_number: str | None = None
    confirmation_expires_at: datetime | None = None
    #: The participants' statuses the decision read (``pharmacy``, ``patient``, ``prescriber``),
    #: at its time: for fronts whose codes tell a deactivated participant from one with
    #: requirements unmet (INTEROP.md, NCPDP). Not part of the Decision body.
    statuses: tuple[tuple[str, str], ...] = ()
    #: CLINICAL_RULES.md's warnings with their evidence (none for a patient without a course).
    warnings: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(
        cls,
        record: DecisionRecord | RecordedDecision,
        authorization: Authorization | None = None,
        dispense: Dispense | None = None,
        statuses: dict[str, str] | None = None,
        warnings: tuple[dict[str, Any], ...] = (),
    ) -> DecisionResult:
        values: dict[str, Any] = {}
        if authorization is not None:
            values.update(authorization_number=authorization.number, rems_patient_id=authorization.rems_patient_id)
            if dispense is None:
                values.update(
                    risk_category=authorization.risk_category.value,
                    days_supply=authorization.days_supply,
                    expires_at=authorization.expires_at,
                )
        if dispense is not None:
            values.update(
                confirmation_number=dispense.confirmation_number,
                confirmation_expires_at=dispense.confirmation_expires_at,
                days_supply=dispense.days_supply,
            )
        return cls(
            id=record.id,
            decision=record.outcome,
            reasons=tuple(dict(r) for r in record.reasons),
            evaluated_at=record.evaluated_at,
            program_version=record.program_version,
            audit_seq=record.audit_seq,
            statuses=tuple(sorted((statuses or {}).items())),
            warnings=warnings,
            **values,
        )

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    def body(self) -> dict[str, Any]:
        """The Decision of API.md: the fields that apply, in the contract's order, as JSON values."""
        out: dict[str, Any] = {
            "id": str(self.id),
            "decision": self.decision,
            "reasons": [{name: r[name] for name in REASON_FIELDS if name in r} for r in self.reasons],
            **({"warnings": [dict(w) for w in self.warnings]} if self.warnings else {}),
            "evaluated_at": self.evaluated_at.isoformat(),
            "program_version": self.program_version,
            "audit_seq": self.audit_seq,
        }
        for name in (
            "authorization_number",
            "risk_category",
            "rems_patient_id",
            "days_supply",
            "expires_at",
            "confirmation_number",
            "confirmation_expires_at",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def replayed_result(uow: UnitOfWork, body: str) -> DecisionResult:
    """The ``DecisionResult`` of a replayed answer's JSON ``body`` (an ``Idempotency-Key``
    replay), with the participants' statuses its recorded snapshot read, for fronts that
    render their own format. ``NotFound`` if the decision is missing."""
    data = json.loads(body)
    with uow:
        row = uow.repo.get(DecisionRecord, uuid.UUID(data["id"]))
        if row is None:
            raise NotFound("The replayed decision is missing.")
        statuses: dict[str, str] = {}
        if row.kind == "dispense":
            statuses = participant_statuses(snapshots.load(DispenseContext, row.snapshot), row.evaluated_at)
    instants = ("expires_at", "confirmation_expires_at")
    values: dict[str, Any] = {
        name: (datetime.fromisoformat(data[name]) if name in instants else data[name])
        for name in (
            "authorization_number",
            "risk_category",
            "rems_patient_id",
            "days_supply",
            "expires_at",
            "confirmation_number",
            "confirmation_expires_at",
        )
        if name in data
    }
    return DecisionResult(
        id=row.id,
        decision=data["decision"],
        reasons=tuple(data["reasons"]),
        evaluated_at=datetime.fromisoformat(data["evaluated_at"]),
        program_version=data["program_version"],
        audit_seq=data["audit_seq"],
        statuses=tuple(sorted(statuses.items())),
        warnings=tuple(data.get("warnings", ())),
        **values,
    )


def acknowledgements(raw: Sequence[Mapping[str, Any]] | None, now: datetime) -> tuple[Acknowledgement, ...]:
    """R-ACK-1: the request's acknowledgements; ``Invalid`` for a contact time in the future."""
    acks = []
    problems: dict[str, list[str]] = {}
    for i, a in enumerate(raw or ()):
        contacted = a.get("prescriber_contacted_at")
        if contacted is not None and contacted > now:
            problems[f"acknowledgements.{i}.prescriber_contacted_at"] = ["Cannot be in the future."]
        acks.append(Acknowledgement(Rule(a["rule"]), str(a["reason"]).strip(), contacted))
    if problems:
        raise Invalid("The acknowledgements cannot be accepted.", problems)
    return tuple(acks)


def clinical_facts(
    inputs: ClinicalInputs | None,
    acks: tuple[Acknowledgement, ...],
    strength_mg: float | None,
    patient: Patient | None = None,
    today: date | None = None,
) -> ClinicalFacts | None:
    """The clinical part of a decision's snapshot; None for a patient without a course.

    Age (whole years) and sex are read only when the course records a weight, for the
    Cockcroft-Gault estimate of R-RENAL-1; the snapshot never holds the date of birth."""
    if inputs is None:
        return None
    age = female = None
    if inputs.facts.weight_kg is not None and patient is not None and today is not None:
        age = age_in_years(patient.date_of_birth, today)
        female = not patient.risk_category.value.startswith("MALE")
    return ClinicalFacts(
        course=inputs.facts,
        labs=inputs.labs,
        acknowledgements=acks,
        strength_mg=strength_mg,
        age_years=age,
        female=female,
    )


def warning_bodies(decision: Decision) -> tuple[dict[str, Any], ...]:
    """The Decision's ``warnings`` with their evidence (API, portal)."""
    return tuple(w.as_dict() for w in decision.warnings)


def clinical_details(
    decision: Decision, acks: tuple[Acknowledgement, ...], actor: Actor, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(details for the audit entry and the event, details for the audit entry alone).

    Warnings appear by code, rule, severity and a digest of their evidence (never a lab
    value); the acknowledgements (who, when, why) only in the audit entry. Nothing at all
    for a decision without warnings or acknowledgements, so a patient without a course
    records exactly what it did before."""
    shared: dict[str, Any] = {}
    audit_only: dict[str, Any] = {}
    if decision.warnings:
        # The event (and so webhooks) names each warning; the evidence's digest stays in the
        # audit entry: an unkeyed digest of a few low-precision values could be reversed.
        shared["warnings"] = [w.summary() for w in decision.warnings]
        audit_only["warnings"] = [
            {**w.summary(), "evidence_digest": digest(w.as_dict()["evidence"])} for w in decision.warnings
        ]
    if acks:
        audit_only["acknowledgements"] = [
            {
                "rule": a.rule.value,
                "reason": a.reason,
                "prescriber_contacted_at": isoformat_utc(a.prescriber_contacted_at)
                if a.prescriber_contacted_at
                else None,
                "by_user_id": actor.user_id,
                "by_role": actor.role,
                "at": isoformat_utc(now),
            }
            for a in acks
        ]
    return shared, audit_only


def encode(result: DecisionResult) -> str:
    """The JSON text of ``result.body()``: what the client receives, and what an
    ``Idempotency-Key`` replay returns byte for byte."""
    return json.dumps(result.body())


@dataclass(frozen=True)
class DecisionAnswer:
    """A decision endpoint's answer: the JSON text to send, whether it is a replay of
    an earlier request with the same ``Idempotency-Key``, and (unless replayed) the
    decision itself for fronts that render their own format."""

    body: str
    replayed: bool = False
    result: DecisionResult | None = None
    status: int = 201


def counted(endpoint: str, decide: Callable[[], DecisionAnswer]) -> DecisionAnswer:
    """Run ``decide`` and count the decision it records in the metrics (outcome, reason
    codes, duration); an idempotent replay recorded nothing and counts nothing."""
    started = time.perf_counter()
    answer = decide()
    if not answer.replayed and answer.result is not None:
        result = answer.result
        metrics.decision_recorded(
            endpoint, result.decision, [r["code"] for r in result.reasons], time.perf_counter() - started
        )
    return answer


@dataclass(frozen=True)
class Replayed:
    seq: int
    decision_id: uuid.UUID
    kind: str
    digest_matches: bool
    result: ReplayResult

    @property
    def matches(self) -> bool:
        return self.digest_matches and self.result.matches

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "decision_id": str(self.decision_id),
            "kind": self.kind,
            "matches": self.matches,
            "snapshot_digest_matches": self.digest_matches,
            "recorded": self.result.recorded,
            "replayed": self.result.replayed,
        }


def _replay_row(program: Program, entry: AuditEntry, row: DecisionRecord) -> Replayed:
    version = program.version(row.program_version)
    decision = replay_decision(row.kind, row.snapshot, version, row.evaluated_at)
    recorded = summary(
        entry.outcome, entry.reasons, entry.details.get("valid_until"), entry.details.get("warnings", [])
    )
    return Replayed(
        entry.seq, row.id, row.kind, digest(row.snapshot) == entry.inputs_digest, compare(recorded, decision)
    )


def replay(uow: UnitOfWork, program: Program, seq: int) -> Replayed:
    """Re-run the decision recorded at audit ``seq``; ``NotFound`` unless it records a decision.

    The recorded outcome, reasons and validity are read from the audit
    entry (the tamper-evident copy), and the stored snapshot must still hash
    to the entry's ``inputs_digest``.
    """
    with uow:
        entry = uow.repo.get(AuditEntry, seq)
        if entry is None or entry.action not in DECISION_ACTIONS.values():
            raise NotFound(f"Audit entry {seq} does not record a decision.")
        found = uow.repo.recorded_decisions(seq)
        if not found:
            raise NotFound(f"The decision of audit entry {seq} is missing.")
        return _replay_row(program, *found[0])


def replay_all(uow: UnitOfWork, program: Program) -> Iterator[Replayed]:
    """Replay every recorded decision, oldest first (one unit of work for the whole run)."""
    with uow:
        for entry, row in uow.repo.recorded_decisions():
            yield _replay_row(program, entry, row)
