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
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rems_service.db.audit_chain import normalize_ref, subject_refs
from rems_service.db.audit_log_store import AUDIT_READ, AuditFilter, AuditLogStore
from rems_service.db.audit_mac import AuditKey, current_key
from rems_service.db.models import AuditEntry
from rems_service.db.repository import DECISION_ACTIONS
from rems_service.db.uow import UnitOfWork

# The life cycles' modules define their commands (and so their events) on import.
from workflows import authorizations, dispenses, participants, patients  # noqa: F401
from workflows.actors import Actor
from workflows.audit import GENESIS_HASH, OUTCOME_COMPLETED, ChainCheck
from workflows.calendar import local_date, start_of_day
from workflows.clock import isoformat_utc
from workflows.events import EVENT_TYPES
from workflows.lifecycle import Lifecycle
from workflows.program import Program

from .errors import Invalid, NotFound
from .versions import version_at

__all__ = [
    "AUDIT_ACTIONS",
    "AnchorSink",
    "AuditFilter",
    "anchor",
    "publish_anchor",
    "audit_filter",
    "charts",
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
#: The event published with each anchor (to admin webhook subscriptions).
ANCHORED_EVENT = "audit.anchored"

log = logging.getLogger(__name__)


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
    #: With published anchors: what each told (see ``AnchorReport``).
    anchors: AnchorReport | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "valid": self.check.valid,
            "checked": self.check.checked,
            "head_seq": self.check.head_seq,
            "head_hash": self.check.head_hash,
            "first_invalid_seq": self.check.first_invalid_seq,
            "invalid_reason": self.check.reason,
            "mode": self.mode,
            "started_after_seq": self.started_after_seq,
            "unsigned": {
                "count": self.check.unsigned,
                "through_seq": self.check.unsigned_through_seq,
                "anchored_by_seq": self.anchors.covering(self.check.unsigned_through_seq) if self.anchors else None,
            },
        }
        if self.anchor is not None:
            out["anchor"] = self.anchor
        if self.anchors is not None:
            out["anchors"] = self.anchors.as_dict()
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
        return replace(check, valid=False, first_invalid_seq=check.head_seq + 1, reason="anchor"), {
            "seq": seq,
            "hash": digest,
            "matches": False,
        }
    stored = store.entry(seq) if seq > 0 else None
    stored_hash = stored.hash if stored is not None else GENESIS_HASH
    if stored_hash != digest:
        return replace(check, valid=False, first_invalid_seq=max(seq, 1), reason="anchor"), {
            "seq": seq,
            "hash": digest,
            "matches": False,
        }
    return check, {"seq": seq, "hash": digest, "matches": True}


# --- Signed anchors published outside the database ---------------------------------------

#: Fields of an anchor file, in the order they are written; ``signature`` covers the others.
ANCHOR_FIELDS = ("version", "seq", "hash", "anchored_at", "key_id")
ANCHOR_VERSION = 1
#: Problems listed in a verification report (the count is always complete).
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class PublishedAnchor:
    """One anchor file: where it was read from and what it holds (None when unreadable)."""

    name: str
    record: dict[str, Any] | None


class AnchorSink:
    """A directory of anchor files, one JSON object each (``anchor-<seq>-<time>.json``),
    written whole or not at all (a temporary file renamed into place)."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def write(self, record: Mapping[str, Any]) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromisoformat(str(record["anchored_at"])).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"anchor-{int(record['seq']):012d}-{stamp}.json"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".anchor-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(dict(record), indent=2) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name

    def read(self) -> list[PublishedAnchor]:
        """Every anchor file, oldest name first; an unreadable one has ``record`` None."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("anchor-*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                record = None
            found.append(PublishedAnchor(path.name, record if isinstance(record, dict) else None))
        return found


def _anchor_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in ANCHOR_FIELDS}


def _well_formed(record: Mapping[str, Any] | None) -> bool:
    if record is None:
        return False
    seq, digest = record.get("seq"), record.get("hash")
    return (
        isinstance(seq, int)
        and not isinstance(seq, bool)
        and seq >= 0
        and isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    )


@dataclass
class AnchorReport:
    """What the published anchors told: each one's signature is checked with the key, then the
    chain must still hold the entry it names with the hash it names."""

    checked: int = 0
    matched: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    #: The seqs of the anchors whose entry is in the chain with the anchored hash.
    matched_seqs: list[int] = field(default_factory=list)

    def problem(self, name: str, seq: Any, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append({"file": name, "seq": seq, "problem": what})

    def covering(self, seq: int | None) -> int | None:
        """The first matching anchor at or after ``seq``: it vouches for every entry up to it."""
        if seq is None:
            return None
        later = [s for s in self.matched_seqs if s >= seq]
        return min(later) if later else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "matched": self.matched,
            "latest_seq": max(self.matched_seqs) if self.matched_seqs else None,
            "problem_count": self.problem_count,
            "problems": self.problems,
        }


def _against_published(
    store: AuditLogStore, check: ChainCheck, published: Sequence[PublishedAnchor], key: AuditKey
) -> tuple[ChainCheck, AnchorReport]:
    """Check every published anchor; the chain is invalid if any fails.

    An anchor whose signature does not check (edited, forged, or signed with another key)
    is itself a finding. For a valid anchor, a chain shorter than it was truncated (the
    first missing entry is invalid); an entry at its seq with another hash means entries
    after the last anchor that still matches were rewritten (the first of them is invalid).
    """
    report = AnchorReport()
    signed: list[tuple[str, int, str]] = []
    for anchor in published:
        report.checked += 1
        record = anchor.record
        if not _well_formed(record):
            report.problem(anchor.name, None, "unreadable")
            continue
        assert record is not None
        if not key.anchor_signature_matches(_anchor_fields(record), record.get("signature")):
            report.problem(anchor.name, record["seq"], "bad signature")
            continue
        signed.append((anchor.name, record["seq"], record["hash"]))
    stored = store.hashes_at(sorted({seq for _, seq, _ in signed if seq > 0}))
    stored[0] = GENESIS_HASH
    bad: list[int] = []
    mismatched: list[int] = []
    for name, seq, digest in sorted(signed, key=lambda a: a[1]):
        if seq not in stored:
            report.problem(name, seq, "no entry at this seq: entries were removed")
            bad.append(min(seq, check.head_seq + 1))
        elif stored[seq] != digest:
            report.problem(name, seq, "the entry at this seq has another hash: entries were rewritten")
            mismatched.append(seq)
        else:
            report.matched += 1
            report.matched_seqs.append(seq)
    for seq in mismatched:
        # The first entry no matching anchor vouches for.
        bad.append(max((s for s in report.matched_seqs if s < seq), default=0) + 1)
    if report.problem_count:
        # An unreadable or badly signed file alone names no entry: the anchors were tampered with.
        candidates = bad + ([check.first_invalid_seq] if check.first_invalid_seq is not None else [])
        earliest = min(candidates) if candidates else None
        reason = check.reason if earliest is not None and earliest == check.first_invalid_seq else "anchor"
        check = replace(check, valid=False, first_invalid_seq=earliest, reason=reason)
    return check, report


def verify(
    uow: UnitOfWork,
    actor: Actor | None,
    now: datetime,
    *,
    incremental: bool = False,
    anchor: tuple[int, str] | None = None,
    anchors: Sequence[PublishedAnchor] | None = None,
    key: AuditKey | None = None,
) -> Verification:
    """Verify the chain; record the verification (when an actor asks) and a checkpoint when valid.

    Every entry's hash and keyed MAC are checked (``key``: the process's audit key by
    default). ``incremental`` starts after the newest checkpoint whose entry still carries
    the checkpointed hash (else from the start); ``anchor`` also proves nothing before it
    was truncated or rewritten; ``anchors`` (published by ``publish_anchor``) do the same
    for each, once their signature checks.
    """
    with uow:
        store = uow.audit_log
        store.snapshot()
        after, prev = 0, GENESIS_HASH
        mode = "full"
        if incremental:
            # Only a checkpoint the service made (its MAC checks) whose entry still has its hash.
            point = store.latest_checkpoint()
            at = store.entry(point.seq) if point else None
            trusted = point is not None and (key or current_key()).checkpoint_mac_matches(
                point.seq, point.hash, point.mac
            )
            if point is not None and trusted and at is not None and at.hash == point.hash:
                after, prev, mode = point.seq, point.hash, "incremental"
        check = store.verify_chain(after, prev, key)
        anchor_report = None
        if anchor is not None:
            check, anchor_report = _against_anchor(store, check, *anchor)
        published = None
        if anchors is not None:
            check, published = _against_published(store, check, anchors, key or current_key())
        # The checkpoint and the read are recorded in a transaction of their own (locking
        # the chain head inside an old snapshot would fail once another append committed).
        store.end_snapshot()
        if check.valid and check.head_seq > after:
            store.add_checkpoint(check.head_seq, check.head_hash, key)
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
        return Verification(check, mode, after, anchor_report, published)


def anchor(uow: UnitOfWork) -> dict[str, Any]:
    """The chain head as ``SEQ:HASH``, to be stored outside the database."""
    with uow:
        head = uow.audit_log.chain_head()
        return {"seq": head.seq, "hash": head.hash, "anchor": f"{head.seq}:{head.hash}"}


def _latest_valid(published: Sequence[PublishedAnchor], key: AuditKey) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for item in published:
        record = item.record
        if record is None or not _well_formed(record):
            continue
        signed = key.anchor_signature_matches(_anchor_fields(record), record.get("signature"))
        if signed and (best is None or record["seq"] > best["seq"]):
            best = record
    return best


def publish_anchor(
    uow_factory: Callable[[], UnitOfWork], key: AuditKey, sink: AnchorSink, now: datetime
) -> dict[str, Any]:
    """Sign the chain head and publish it to ``sink`` (outside the database), with an
    ``audit.anchored`` event for admin webhooks. Returns ``{"published": bool, ...}``.

    An anchor only extends a chain that verifies: the entries since the newest anchor
    already published (all of them, the first time) are checked first — hashes, MACs,
    and that entry still holding the anchored hash. A chain that does not verify gets no
    anchor (an error is logged and returned: run ``rems audit verify --anchors``). A head
    that has not moved since the newest anchor is not anchored again.
    """
    published = sink.read()
    latest = _latest_valid(published, key)
    with uow_factory() as uow:
        store = uow.audit_log
        store.snapshot()
        head = store.chain_head()
        if latest is not None and latest["seq"] == head.seq and latest["hash"] == head.hash:
            return {"published": False, "reason": "unchanged", "seq": head.seq, "hash": head.hash}
        after, prev = 0, GENESIS_HASH
        if latest is not None and 0 < latest["seq"] <= head.seq:
            at = store.hashes_at([latest["seq"]]).get(latest["seq"])
            if at == latest["hash"]:
                after, prev = latest["seq"], latest["hash"]
        check = store.verify_chain(after, prev, key)
        if check.valid and latest is not None and after == 0 and latest["seq"] > 0:
            # The newest anchor is no longer in the chain (truncated, or rewritten before it).
            check = replace(
                check, valid=False, first_invalid_seq=min(latest["seq"], check.head_seq + 1), reason="anchor"
            )
        store.end_snapshot()
    if not check.valid:
        log.error(
            "audit chain does not verify: no anchor published",
            extra={"first_invalid_seq": check.first_invalid_seq, "reason": check.reason},
        )
        return {
            "published": False,
            "reason": "chain invalid",
            "first_invalid_seq": check.first_invalid_seq,
            "invalid_reason": check.reason,
        }
    fields_ = {
        "version": ANCHOR_VERSION,
        "seq": check.head_seq,
        "hash": check.head_hash,
        "anchored_at": isoformat_utc(now),
        "key_id": key.key_id,
    }
    record = {**fields_, "signature": key.sign_anchor(fields_)}
    name = sink.write(record)
    with uow_factory() as uow:
        uow.repo.record_event(ANCHORED_EVENT, now, record)
        uow.commit()
    return {"published": True, "file": name, **record}


#: The charts' range when the filter gives no ``since``: this many days up to ``until``.
CHART_DEFAULT_DAYS = 30
#: The most days the per-day chart shows (the latest of a longer range).
CHART_MAX_DAYS = 92
#: How many denial reasons the second chart ranks.
CHART_TOP_REASONS = 10


@dataclass(frozen=True)
class DayOutcomes:
    """One calendar day of the program's zone and its decisions, by outcome."""

    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Charts:
    """What the auditor's two charts show, for one range ``[since, until)``.

    ``days``: every calendar day of the range (days without decisions count zero),
    ``truncated`` when the range was longer than ``CHART_MAX_DAYS`` and only its last
    days are shown; ``denial_reasons``: ``(code, count)`` over the same range, most
    frequent first.
    """

    since: datetime
    until: datetime
    days: list[DayOutcomes]
    truncated: bool
    denial_reasons: list[tuple[str, int]]


def _chart_days(
    program: Program, since: datetime, until: datetime, tz: ZoneInfo
) -> tuple[list[tuple[date, datetime, datetime]], bool]:
    """The calendar days (in the program's zone ``tz``) covering ``[since, until)``: each day
    with its instants, clipped to the range; the last ``CHART_MAX_DAYS`` of them."""
    if until <= since:
        return [], False
    first, last = local_date(since, tz), local_date(until - timedelta(microseconds=1), tz)
    count = (last - first).days + 1
    truncated = count > CHART_MAX_DAYS
    if truncated:
        first = last - timedelta(days=CHART_MAX_DAYS - 1)
    days = []
    day = first
    while day <= last:
        start, end = day_start(program, day), day_start(program, day + timedelta(days=1))
        days.append((day, max(start, since), min(end, until)))
        day += timedelta(days=1)
    return days, truncated


def charts(uow: UnitOfWork, actor: Actor, now: datetime, program: Program, f: AuditFilter) -> Charts:
    """Decisions per day by outcome and the most frequent denial reasons, for the entries
    ``f`` matches in its range (``since`` .. ``until``; without ``until``, through the end of
    today; without ``since``, the ``CHART_DEFAULT_DAYS`` days before ``until``).

    Counts only the two decisions (an ``action`` filter naming another action counts
    nothing). Recorded as an auditor's read, like every other.
    """
    version = version_at(program, now)
    tz = version.tz
    until = f.until or day_start(program, local_date(now, tz) + timedelta(days=1))
    since = f.since or day_start(
        program, local_date(until - timedelta(microseconds=1), tz) - timedelta(days=CHART_DEFAULT_DAYS - 1)
    )
    days, truncated = _chart_days(program, since, until, tz)
    if truncated:
        since = days[0][1]
    ranged = replace(f, since=since, until=until)
    with uow:
        counts = uow.audit_log.decisions_per_day(ranged, [(start, end) for _day, start, end in days])
        reasons = uow.audit_log.top_denial_reasons(ranged, CHART_TOP_REASONS) if days else []
        record_read(
            uow,
            actor,
            now,
            "charts",
            {"filters": ranged.as_dict(), "days": len(days), "truncated": truncated},
        )
        uow.commit()
    per_day: list[dict[str, int]] = [{} for _ in days]
    for index, outcome, count in counts:
        per_day[index][outcome] = per_day[index].get(outcome, 0) + count
    return Charts(
        since=since,
        until=until,
        days=[DayOutcomes(day, per_day[i]) for i, (day, _start, _end) in enumerate(days)],
        truncated=truncated,
        denial_reasons=reasons,
    )


#: The most entries a participant's history shows.
HISTORY_LIMIT = 100


def participant_history(
    uow: UnitOfWork, actor: Actor, now: datetime, kind: str, participant_id: Any
) -> list[AuditEntry]:
    """The audit entries of a prescriber's or a pharmacy's life cycle (``kind``), newest
    first (program staff's participant page). A read of the log, recorded as such."""
    if kind not in ("prescriber", "pharmacy"):
        raise ValueError(kind)
    with uow:
        rows = list(uow.directory.history(kind, participant_id, HISTORY_LIMIT))
        record_read(uow, actor, now, "history", {f"{kind}_id": participant_id, "returned": len(rows)})
        uow.commit()
        return rows
