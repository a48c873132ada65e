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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rems_service import metrics
from rems_service.db.models import AuditEntry, Authorization, DecisionRecord, Dispense
from rems_service.db.repository import DECISION_ACTIONS
from rems_service.db.uow import UnitOfWork
from workflows.audit import digest
from workflows.program import Program
from workflows.replay import ReplayResult, compare, summary
from workflows.replay import replay as replay_decision

from .errors import NotFound

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

    @classmethod
    def of(
        cls, record: DecisionRecord, authorization: Authorization | None = None, dispense: Dispense | None = None
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
    recorded = summary(entry.outcome, entry.reasons, entry.details.get("valid_until"))
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
