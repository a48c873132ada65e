"""The auditor's view of the audit log (R-AUD-1 to R-AUD-3, API.md Audit).

Filters, newest-first keyset pages with an opaque cursor, single entries, a
constant-memory export, verification (whole, incremental from the last
checkpoint, or against an anchor kept outside the database) — and every
read is itself recorded (action ``audit.read``: who looked at what).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rems_service.db.audit_chain import normalize_ref, subject_refs
from rems_service.db.audit_log_store import AUDIT_READ, AuditFilter, AuditLogStore
from rems_service.db.models import AuditEntry
from rems_service.db.repository import DECISION_ACTIONS
from rems_service.db.uow import UnitOfWork

# The life cycles' modules define their commands (and so their events) on import.
from workflows import authorizations, dispenses, participants, patients  # noqa: F401
from workflows.actors import Actor
from workflows.audit import GENESIS_HASH, OUTCOME_COMPLETED, ChainCheck
from workflows.calendar import start_of_day
from workflows.events import EVENT_TYPES
from workflows.lifecycle import Lifecycle
from workflows.program import Program

from .errors import Invalid, NotFound

__all__ = [
    "AUDIT_ACTIONS",
    "AuditFilter",
    "anchor",
    "audit_filter",
    "entry",
    "page",
    "parse_anchor",
    "record_export",
    "references",
    "stream",
    "verify",
]

#: Largest page the API serves.
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
#: Rows fetched per round trip while exporting (memory stays bounded by this).
EXPORT_BATCH = 1000


def _lifecycle_events() -> set[str]:
    """The event of every command of every life cycle (each state change is recorded under it)."""
    found: set[str] = set()
    pending: list[type[Lifecycle]] = list(Lifecycle.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.update(spec.event for spec in cls.COMMANDS.values())
    return found


#: The ``action=`` values an auditor may ask for: the two decisions, every state change of
#: a life cycle, every event type (registrations and records are audited under their event;
#: a few event types are notices only and match no entry), and the auditor's own reads.
AUDIT_ACTIONS: tuple[str, ...] = tuple(
    sorted({*DECISION_ACTIONS.values(), *_lifecycle_events(), *EVENT_TYPES, AUDIT_READ})
)


def day_start(program: Program, day: date) -> datetime:
    """The first instant of ``day`` in the zone of the program version in force that day
    (the first version's zone before the program began)."""
    version = program.versions[0]
    for candidate in program.versions:
        if candidate.effective_from <= day:
            version = candidate
    return start_of_day(day, version.tz)


def _instant(program: Program, value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return day_start(program, value)


def audit_filter(program: Program, args: Mapping[str, Any]) -> AuditFilter:
    """The filter an auditor's query asks for: references in canonical form (as typed, any case,
    O/I/L typos in numbers), a date-only ``since``/``until`` as that day's start in the
    program's zone."""
    refs = {
        kind: normalize_ref(kind, args[kind])
        for kind in ("rems_patient_id", "authorization_number", "confirmation_number")
        if args.get(kind)
    }
    return AuditFilter(
        action=args.get("action"),
        outcome=args.get("outcome"),
        reason=args.get("reason"),
        pharmacy_id=args.get("pharmacy_id"),
        prescriber_id=args.get("prescriber_id"),
        since=_instant(program, args.get("since")),
        until=_instant(program, args.get("until")),
        include_reads=bool(args.get("include_reads", False)),
        **refs,
    )


def references(subject: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, list[str]]:
    """The references an entry is found by (what the patient and number filters match), by kind, sorted."""
    found: dict[str, list[str]] = {}
    for kind, value in sorted(subject_refs(subject, details)):
        found.setdefault(kind, []).append(value)
    return found


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": seq}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        before = data["before"]
        if not isinstance(before, int) or isinstance(before, bool) or not 1 <= before <= MAX_SEQ:
            raise ValueError
        return before
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Invalid("The cursor is not one this service issued.", {"cursor": ["Invalid cursor."]}) from None


def record_read(uow: UnitOfWork, actor: Actor, now: datetime, operation: str, details: dict[str, Any]) -> None:
    """Who looked at what: the read is itself an audit entry."""
    uow.repo.append_audit(
        actor=actor,
        action=AUDIT_READ,
        outcome=OUTCOME_COMPLETED,
        effective_at=now,
        subject={},
        inputs={"operation": operation, **details},
        details={"operation": operation, **details},
    )


def page(
    uow: UnitOfWork, actor: Actor, now: datetime, f: AuditFilter, limit: int, cursor: str | None
) -> tuple[list[AuditEntry], str | None]:
    """Entries matching ``f``, newest first, ``limit`` per page; returns the page and the next cursor."""
    before = decode_cursor(cursor) if cursor else None
    with uow:
        rows = uow.audit_log.page(f, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].seq) if more else None
        record_read(
            uow,
            actor,
            now,
            "list",
            {
                "filters": f.as_dict(),
                "limit": limit,
                "cursor_before": before,
                "returned": len(rows),
                "seqs": [rows[0].seq, rows[-1].seq] if rows else [],
            },
        )
        uow.commit()
        return rows, next_cursor


#: The largest sequence number the audit table can hold (a signed 64-bit integer).
MAX_SEQ = 2**63 - 1


def entry(uow: UnitOfWork, actor: Actor, now: datetime, seq: int) -> AuditEntry:
    if not 1 <= seq <= MAX_SEQ:  # no such entry can exist; the database would refuse the number
        raise NotFound(f"Audit entry {seq} not found.")
    with uow:
        row = uow.audit_log.entry(seq)
        if row is None:
            raise NotFound(f"Audit entry {seq} not found.")
        record_read(uow, actor, now, "get", {"seq": seq})
        uow.commit()
        return row


def record_export(uow: UnitOfWork, actor: Actor, now: datetime, f: AuditFilter, fmt: str) -> int:
    """Record the export before it streams; returns the head ``seq`` it stops at,
    so the file is a consistent snapshot even while new entries arrive."""
    with uow:
        head = uow.audit_log.head_seq()
        record_read(uow, actor, now, "export", {"filters": f.as_dict(), "format": fmt, "through_seq": head})
        uow.commit()
        return head


def stream(uow_factory: Callable[[], UnitOfWork], f: AuditFilter, through_seq: int) -> Iterator[Any]:
    """Matching entries up to ``through_seq``, oldest first, in keyset batches of
    plain rows (attribute access like an ``AuditEntry``).

    Each batch is read in a short unit of work of its own and dropped before the
    next, so memory does not grow with the size of the log.
    """
    last = 0
    while True:
        with uow_factory() as uow:
            rows = uow.audit_log.export_batch(f, last, through_seq, EXPORT_BATCH)
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


@dataclass(frozen=True)
class Verification:
    check: ChainCheck
    mode: str
    started_after_seq: int
    anchor: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "valid": self.check.valid,
            "checked": self.check.checked,
            "head_seq": self.check.head_seq,
            "head_hash": self.check.head_hash,
            "first_invalid_seq": self.check.first_invalid_seq,
            "mode": self.mode,
            "started_after_seq": self.started_after_seq,
        }
        if self.anchor is not None:
            out["anchor"] = self.anchor
        return out


def parse_anchor(value: str) -> tuple[int, str]:
    seq, sep, digest = value.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise Invalid(
            "An anchor is SEQ:HASH as printed by `rems audit anchor`.",
            {"anchor": ["Expected SEQ:HASH (64 hex digits)."]},
        )
    return int(seq), digest


def _against_anchor(
    store: AuditLogStore, check: ChainCheck, seq: int, digest: str
) -> tuple[ChainCheck, dict[str, Any]]:
    """The anchor (taken earlier and kept outside the database) must still be in the chain.

    A chain that is internally consistent but shorter than the anchor was
    truncated: the first missing entry is invalid. One whose entry at the
    anchor has another hash was rewritten at or before it.
    """
    if not check.valid:
        return check, {"seq": seq, "hash": digest, "matches": False}
    if check.head_seq < seq:
        return ChainCheck(False, check.checked, check.head_seq, check.head_hash, check.head_seq + 1), {
            "seq": seq,
            "hash": digest,
            "matches": False,
        }
    stored = store.entry(seq) if seq > 0 else None
    stored_hash = stored.hash if stored is not None else GENESIS_HASH
    if stored_hash != digest:
        return ChainCheck(False, check.checked, check.head_seq, check.head_hash, max(seq, 1)), {
            "seq": seq,
            "hash": digest,
            "matches": False,
        }
    return check, {"seq": seq, "hash": digest, "matches": True}


def verify(
    uow: UnitOfWork,
    actor: Actor | None,
    now: datetime,
    *,
    incremental: bool = False,
    anchor: tuple[int, str] | None = None,
) -> Verification:
    """Verify the chain; record the verification (when an actor asks) and a checkpoint when valid.

    ``incremental`` starts after the newest checkpoint whose entry still
    carries the checkpointed hash (else from the start); ``anchor`` also
    proves nothing before it was truncated or rewritten.
    """
    with uow:
        store = uow.audit_log
        store.snapshot()
        after, prev = 0, GENESIS_HASH
        mode = "full"
        if incremental:
            point = store.latest_checkpoint()
            at = store.entry(point.seq) if point else None
            if point is not None and at is not None and at.hash == point.hash:
                after, prev, mode = point.seq, point.hash, "incremental"
        check = store.verify_chain(after, prev)
        anchor_report = None
        if anchor is not None:
            check, anchor_report = _against_anchor(store, check, *anchor)
        # The checkpoint and the read are recorded in a transaction of their own (locking
        # the chain head inside an old snapshot would fail once another append committed).
        store.end_snapshot()
        if check.valid and check.head_seq > after:
            store.add_checkpoint(check.head_seq, check.head_hash)
        if actor is not None:
            record_read(
                uow,
                actor,
                now,
                "verify",
                {
                    "mode": mode,
                    "valid": check.valid,
                    "head_seq": check.head_seq,
                    "first_invalid_seq": check.first_invalid_seq,
                },
            )
        uow.commit()
        return Verification(check, mode, after, anchor_report)


def anchor(uow: UnitOfWork) -> dict[str, Any]:
    """The chain head as ``SEQ:HASH``, to be stored outside the database."""
    with uow:
        head = uow.audit_log.chain_head()
        return {"seq": head.seq, "hash": head.hash, "anchor": f"{head.seq}:{head.hash}"}
