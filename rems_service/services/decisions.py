"""Recording and replaying authorization and dispense decisions (R-AUD-1).

A decision is stored three ways in one transaction: a ``decisions`` row
holding the snapshot it read, an audit entry digesting that snapshot, and
an outbox event. ``replay`` decides again from the stored snapshot under the
recorded program version and says whether the outcome is the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, select

from rems_service.db.models import AuditEntry, DecisionRecord, Dispense, Patient, PregnancyTestRecord
from workflows import snapshots
from workflows.audit import digest
from workflows.decisions import Decision, PatientFacts
from workflows.dispenses import DispenseStatus, PriorDispense
from workflows.program import Program
from workflows.replay import ReplayResult, compare, summary
from workflows.replay import replay as replay_decision
from workflows.testing import PregnancyTest

from . import audit, events
from .actor import Actor
from .errors import NotFound

#: Audit actions of the two decisions; the outcome column says approved or denied.
ACTIONS = {"authorization": "authorization.decided", "dispense": "dispense.decided"}


def patient_facts(session: Session, row: Patient) -> PatientFacts:
    """The snapshot of a patient that decisions read (ids, category, status, tests)."""
    tests = session.execute(
        select(PregnancyTestRecord.collected_at, PregnancyTestRecord.result, PregnancyTestRecord.sensitivity_miu_ml)
        .where(PregnancyTestRecord.patient_id == row.id)
        .order_by(PregnancyTestRecord.collected_at)
    ).all()
    return PatientFacts(
        patient_id=str(row.id),
        rems_patient_id=row.rems_patient_id,
        prescriber_id=str(row.prescriber_id),
        risk_category=row.risk_category,
        menstrual_cycle=row.menstrual_cycle,
        status=row.status,
        therapy_started_at=row.therapy_started_at,
        tests=tuple(PregnancyTest(t.collected_at, t.result, t.sensitivity_miu_ml) for t in tests),
    )


def prior_dispense(session: Session, patient_id: uuid.UUID) -> PriorDispense | None:
    """R-DISP-3: the patient's most recent completed dispense."""
    row = session.execute(
        select(Dispense.dispensed_at, Dispense.days_supply)
        .where(Dispense.patient_id == patient_id, Dispense.status == DispenseStatus.DISPENSED)
        .order_by(Dispense.dispensed_at.desc())
        .limit(1)
    ).first()
    return PriorDispense(row.dispensed_at, row.days_supply) if row else None


def record(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    decision_id: uuid.UUID,
    snapshot: Any,
    decision: Decision,
    program_version: str,
    now: datetime,
    subject: Mapping[str, Any],
    details: Mapping[str, Any],
    event: str,
) -> DecisionRecord:
    """Store the decision, its audit entry (digest of the snapshot) and its event."""
    data = snapshots.dump(snapshot)
    reasons = [r.as_dict() for r in decision.reasons]
    entry = audit.append(
        session,
        actor=actor,
        action=ACTIONS[kind],
        outcome=decision.outcome,
        effective_at=now,
        subject=subject,
        reasons=reasons,
        program_version=program_version,
        inputs=data,
        details={"decision_id": decision_id, "kind": kind, "valid_until": decision.valid_until, **details},
    )
    row = DecisionRecord(
        id=decision_id,
        kind=kind,
        outcome=decision.outcome,
        reasons=reasons,
        evaluated_at=now,
        valid_until=decision.valid_until,
        program_version=program_version,
        snapshot=data,
        actor_user_id=actor.user_id,
        prescriber_id=subject.get("prescriber_id"),
        pharmacy_id=subject.get("pharmacy_id"),
        patient_id=subject.get("patient_id"),
        rems_patient_id=subject.get("rems_patient_id"),
        audit_seq=entry.seq,
        created_at=entry.recorded_at,
    )
    # A Core insert (nothing changes the row later); the caller gets the object for rendering.
    session.execute(_INSERT_DECISION, {c.name: getattr(row, c.name) for c in DecisionRecord.__table__.columns})
    events.record(
        session,
        event,
        now,
        {
            **subject,
            "decision_id": decision_id,
            "outcome": decision.outcome,
            "reasons": reasons,
            "valid_until": decision.valid_until,
            **details,
        },
    )
    return row


_INSERT_DECISION = insert(DecisionRecord.__table__)


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


def replay(session: Session, program: Program, seq: int) -> Replayed:
    """Re-run the decision recorded at audit ``seq``; ``NotFound`` unless it records a decision.

    The recorded outcome, reasons and validity are read from the audit
    entry (the tamper-evident copy), and the stored snapshot must still hash
    to the entry's ``inputs_digest``.
    """
    entry = session.get(AuditEntry, seq)
    if entry is None or entry.action not in ACTIONS.values():
        raise NotFound(f"Audit entry {seq} does not record a decision.")
    row = session.get(DecisionRecord, uuid.UUID(entry.details["decision_id"]))
    if row is None:
        raise NotFound(f"The decision of audit entry {seq} is missing.")
    return _replay_row(program, entry, row)


def replay_all(session: Session, program: Program) -> Iterator[Replayed]:
    """Replay every recorded decision, oldest first."""
    rows = session.exec(
        select(AuditEntry, DecisionRecord)
        .join(DecisionRecord, DecisionRecord.audit_seq == AuditEntry.seq)
        .order_by(AuditEntry.seq)
    ).all()
    for entry, row in rows:
        yield _replay_row(program, entry, row)
