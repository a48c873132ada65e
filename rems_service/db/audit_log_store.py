"""The auditor's reads of the audit log: filtered pages, single entries, export
batches, checkpoints and the chain head (R-AUD-1, R-AUD-2). Appends go through
``audit_chain.append``; nothing here changes an entry."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, case, exists, func
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from workflows.audit import OUTCOME_DENIED

from . import audit_chain
from .audit_mac import AuditKey, current_key
from .engine import database_now
from .models import AuditChainHead, AuditCheckpoint, AuditEntry, AuditReasonCode, AuditSubjectRef
from .repository import DECISION_ACTIONS

#: The action of an auditor's own reads (listings hide them unless asked).
AUDIT_READ = "audit.read"


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor asks for; every field narrows the result.

    ``rems_patient_id``, ``authorization_number`` and ``confirmation_number``
    are compared in canonical form (``audit_chain.normalize_ref``; the service
    normalizes what was typed) against every reference an entry names, so a
    patient-mismatch denial is found by either patient. The auditor's own
    ``audit.read`` entries are left out unless ``include_reads`` (or ``action``
    asks for them).
    """

    action: str | None = None
    outcome: str | None = None
    reason: str | None = None
    pharmacy_id: uuid.UUID | None = None
    prescriber_id: uuid.UUID | None = None
    rems_patient_id: str | None = None
    authorization_number: str | None = None
    confirmation_number: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_reads: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The filters given (every field not at its default), as the audit of the read records them."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}


def _ref(kind: str, value: str) -> Any:
    """Entries naming reference ``value`` of ``kind``: a range of the ``(kind, value, seq)`` key."""
    return col(AuditEntry.seq).in_(
        select(AuditSubjectRef.seq).where(col(AuditSubjectRef.kind) == kind, col(AuditSubjectRef.value) == value)
    )


def _where(query: Any, f: AuditFilter) -> Any:
    if f.action:
        query = query.where(AuditEntry.action == f.action)
    elif not f.include_reads:
        query = query.where(AuditEntry.action != AUDIT_READ)
    if f.outcome:
        query = query.where(AuditEntry.outcome == f.outcome)
    if f.reason:
        query = query.where(
            exists().where(col(AuditReasonCode.seq) == col(AuditEntry.seq), col(AuditReasonCode.code) == f.reason)
        )
    if f.pharmacy_id:
        query = query.where(AuditEntry.pharmacy_id == f.pharmacy_id)
    if f.prescriber_id:
        query = query.where(AuditEntry.prescriber_id == f.prescriber_id)
    for kind in ("rems_patient_id", "authorization_number", "confirmation_number"):
        value = getattr(f, kind)
        if value:
            query = query.where(_ref(kind, value))
    if f.since:
        query = query.where(AuditEntry.effective_at >= f.since)
    if f.until:
        query = query.where(AuditEntry.effective_at < f.until)
    return query


#: Entries recording a decision (the charts count these only).
_DECIDED = col(AuditEntry.action).in_(tuple(DECISION_ACTIONS.values()))


class AuditLogStore:
    """Reads of the audit log on one session."""

    def __init__(self, session: Session):
        self.session = session

    def page(self, f: AuditFilter, before: int | None, limit: int) -> list[AuditEntry]:
        """Up to ``limit`` entries matching ``f`` with ``seq < before``, newest first."""
        query = _where(select(AuditEntry), f)
        if before is not None:
            query = query.where(AuditEntry.seq < before)
        return list(self.session.exec(query.order_by(col(AuditEntry.seq).desc()).limit(limit)).all())

    def entry(self, seq: int) -> AuditEntry | None:
        return self.session.get(AuditEntry, seq)

    def head_seq(self) -> int:
        """The newest entry's ``seq`` (0 for an empty log)."""
        return self.session.exec(select(AuditEntry.seq).order_by(col(AuditEntry.seq).desc()).limit(1)).first() or 0

    def export_batch(self, f: AuditFilter, after: int, through: int, limit: int) -> Sequence[Row[Any]]:
        """Matching entries with ``after < seq <= through``, oldest first, as plain rows."""
        columns = AuditEntry.__table__.c  # type: ignore[attr-defined]
        query: Select[Any] = _where(select_columns(*columns), f)
        return self.session.execute(
            query.where(columns.seq > after, columns.seq <= through).order_by(columns.seq).limit(limit)
        ).all()

    def snapshot(self) -> None:
        """Read the rest of this transaction from one snapshot (PostgreSQL REPEATABLE READ), so
        an append committed while the chain is read does not look like a forged tail."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    def end_snapshot(self) -> None:
        """End the read-only snapshot; what follows runs in a transaction of its own."""
        self.session.commit()

    def latest_checkpoint(self) -> AuditCheckpoint | None:
        return self.session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq).desc()).limit(1)).first()

    def add_checkpoint(self, seq: int, digest: str, key: AuditKey | None = None) -> None:
        """Record that the chain verified up to ``seq``, MAC'd with the audit key."""
        mac = (key or current_key()).checkpoint_mac(seq, digest)
        self.session.add(AuditCheckpoint(seq=seq, hash=digest, verified_at=database_now(self.session), mac=mac))

    def verify_chain(self, after_seq: int, prev_hash: str, key: AuditKey | None = None) -> Any:
        return audit_chain.verify_chain(self.session, after_seq, prev_hash, key)

    def hashes_at(self, seqs: Sequence[int], batch: int = 1000) -> dict[int, str]:
        """The stored hash of each entry of ``seqs`` that exists."""
        found: dict[int, str] = {}
        for start in range(0, len(seqs), batch):
            chunk = list(seqs[start : start + batch])
            rows = self.session.exec(select(AuditEntry.seq, AuditEntry.hash).where(col(AuditEntry.seq).in_(chunk)))
            found.update((seq, digest) for seq, digest in rows)
        return found

    def chain_head(self) -> AuditChainHead:
        head = self.session.get(AuditChainHead, audit_chain.CHAIN_HEAD_ID)
        assert head is not None, "the first migration creates the chain head"
        return head

    # -- aggregates for the auditor's charts ----------------------------------------------------

    def decisions_per_day(
        self, f: AuditFilter, days: Sequence[tuple[datetime, datetime]]
    ) -> list[tuple[int, str, int]]:
        """Decisions matching ``f`` counted per day and outcome: ``(day index, outcome, count)``.

        ``days`` are consecutive ``[start, end)`` instants (the program's calendar days,
        computed by the caller so that each day is a local day on every backend); entries
        outside them are not counted. One grouped statement, whatever the number of days.
        """
        if not days:
            return []
        effective = col(AuditEntry.effective_at)
        day = case(*((effective < end, index) for index, (_start, end) in enumerate(days)), else_=None)
        # Grouped outside: a CASE of bound instants is never "the same expression" twice to PostgreSQL.
        decided = (
            _where(select_columns(day.label("day"), col(AuditEntry.outcome).label("outcome")), f)
            .where(_DECIDED, effective >= days[0][0], effective < days[-1][1])
            .subquery()
        )
        query = select_columns(decided.c.day, decided.c.outcome, func.count()).group_by(
            decided.c.day, decided.c.outcome
        )
        return [(int(index), str(outcome), int(count)) for index, outcome, count in self.session.execute(query)]

    def top_denial_reasons(self, f: AuditFilter, limit: int) -> list[tuple[str, int]]:
        """The reason codes of the denied decisions matching ``f``, most frequent first
        (ties by code): ``(code, count)``, at most ``limit``."""
        count = func.count()
        query = (
            _where(select_columns(col(AuditReasonCode.code), count).select_from(AuditEntry), f)
            .join(AuditReasonCode, col(AuditReasonCode.seq) == col(AuditEntry.seq))
            .where(_DECIDED, col(AuditEntry.outcome) == OUTCOME_DENIED)
            .group_by(col(AuditReasonCode.code))
            .order_by(count.desc(), col(AuditReasonCode.code))
            .limit(limit)
        )
        return [(str(code), int(n)) for code, n in self.session.execute(query)]
