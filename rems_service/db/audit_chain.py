"""The audit log's append path (R-AUD-1, R-AUD-2, R-AUD-3).

``append`` is called inside the unit of work of the change it records, so
the entry commits or rolls back with it. Appends are serialized by locking
the single chain-head row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
units of work already hold the database write lock), which is what keeps
concurrent writers from forking the chain.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from typing import Any

from sqlalchemy import JSON, BigInteger, String, Uuid, insert, text
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from rems_service.db.audit_mac import AuditKey, current_key
from rems_service.db.engine import database_now, remember_clock
from rems_service.db.models import (
    CHAIN_HEAD_ID,
    AuditChainHead,
    AuditEntry,
    AuditReasonCode,
    AuditSubjectRef,
    table_of,
)
from rems_service.db.types import UTCDateTime
from workflows.actors import Actor
from workflows.audit import (
    GENESIS_HASH,
    ChainCheck,
    PresumedCanonical,
    canonical_json,
    chain_hash,
    digest,
    verify_entries,
)
from workflows.identifiers import normalize_reference_number
from workflows.rules import Rule

#: Subject and detail keys that would carry PHI; refused outright (R-AUD-3).
PHI_KEYS = frozenset({"first_name", "last_name", "name", "patient_name", "date_of_birth", "dob", "guardian_name"})


#: The references an entry is found by (``audit_subject_refs``): each kind, and the top-level
#: keys of its subject and details that carry one. A patient-mismatch denial names both the
#: presented patient and the authorization's; a decision names the number it issued or
#: confirmed in its details.
REF_KEYS: dict[str, tuple[str, ...]] = {
    "rems_patient_id": ("rems_patient_id", "presented_rems_patient_id", "authorization_rems_patient_id"),
    "authorization_number": ("authorization_number",),
    "confirmation_number": ("confirmation_number",),
}
#: Subject keys kept in the audit entry only, never in the event a decision emits (webhooks
#: reach the pharmacy): the patients a patient-mismatch denial names.
AUDIT_ONLY_SUBJECT_KEYS = frozenset({"presented_rems_patient_id", "authorization_rems_patient_id"})
#: Longest indexed value (the column's width); nothing the service issues comes near it.
REF_MAX_LENGTH = 64


def normalize_ref(kind: str, value: str) -> str:
    """The canonical form of a reference as typed: REMS patient ids upper case, authorization
    and confirmation numbers as ``normalize_reference_number`` reads them (O/I/L typos)."""
    if kind == "rems_patient_id":
        return "".join(value.split()).upper()
    return normalize_reference_number(value)


def subject_refs(subject: Mapping[str, Any], details: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(kind, value)`` of every reference the entry names at the top level of its subject or details."""
    refs = set()
    for kind, keys in REF_KEYS.items():
        for source in (subject, details):
            for key in keys:
                value = source.get(key)
                if isinstance(value, str) and value.strip():
                    canonical = normalize_ref(kind, value)
                    if len(canonical) <= REF_MAX_LENGTH:
                        refs.add((kind, canonical))
    return refs


def _plain(value: Any) -> Any:
    """The JSON form the database will hand back, so the hash survives a round trip."""
    return json.loads(canonical_json(value))


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _refuse_phi(where: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key in PHI_KEYS:
                raise ValueError(f"audit {where} may not carry {key!r} ({Rule.R_AUD_3.value})")
            _refuse_phi(where, inner)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            _refuse_phi(where, inner)


#: The columns an entry's hash covers: every column except ``hash`` and ``mac``.
CONTENT_COLUMNS = (
    "seq",
    "recorded_at",
    "effective_at",
    "actor_user_id",
    "actor_role",
    "action",
    "outcome",
    "reasons",
    "program_version",
    "subject",
    "prescriber_id",
    "pharmacy_id",
    "rems_patient_id",
    "inputs_digest",
    "details",
    "prev_hash",
)


def entry_content(entry: Any) -> dict[str, Any]:
    """Every column of ``entry`` except ``hash`` and ``mac``: what the hash covers (the MAC
    covers the hash)."""
    return {name: getattr(entry, name) for name in CONTENT_COLUMNS}


@dataclass(frozen=True)
class PreparedEntry:
    """An entry before its place in the chain is known: every column but ``seq``,
    ``recorded_at``, ``prev_hash``, ``hash`` and ``mac``, with the reason codes and
    references it is indexed by. Checked for PHI when prepared."""

    values: dict[str, Any]
    codes: list[str]
    refs: list[tuple[str, str]]

    def sealed(self, head_seq: int, head_hash: str, recorded_at: datetime) -> dict[str, Any]:
        """Every column of the entry that follows ``head_seq``/``head_hash``, recorded at
        ``recorded_at`` (the database's clock under the head's lock): hash and MAC included."""
        values = {**self.values, "seq": head_seq + 1, "recorded_at": recorded_at, "prev_hash": head_hash}
        values["hash"] = chain_hash(head_hash, {name: values[name] for name in CONTENT_COLUMNS})
        values["mac"] = current_key().entry_mac(values["hash"])
        return values


def prepare(
    *,
    actor: Actor,
    action: str,
    outcome: str,
    effective_at: datetime,
    subject: Mapping[str, Any],
    reasons: Sequence[Mapping[str, Any]] = (),
    program_version: str | None = None,
    inputs: Any = None,
    details: Mapping[str, Any] | None = None,
) -> PreparedEntry:
    """The entry's content as it will be stored (JSON in the form the database hands back,
    so the hash survives a round trip). Raises ``ValueError`` if the subject or details
    carry PHI keys (R-AUD-3)."""
    stored_subject: dict[str, Any] = _plain(dict(subject))
    stored_details: dict[str, Any] = _plain(dict(details or {}))
    _refuse_phi("subject", stored_subject)
    _refuse_phi("details", stored_details)
    stored_reasons: list[dict[str, Any]] = _plain(list(reasons))
    values = {
        "effective_at": effective_at,
        "actor_user_id": actor.user_id,
        "actor_role": actor.role,
        "action": action,
        "outcome": outcome,
        "reasons": stored_reasons,
        "program_version": program_version,
        "subject": stored_subject,
        "prescriber_id": _uuid(stored_subject.get("prescriber_id")),
        "pharmacy_id": _uuid(stored_subject.get("pharmacy_id")),
        "rems_patient_id": stored_subject.get("rems_patient_id"),
        "inputs_digest": digest(inputs if inputs is not None else {}),
        "details": stored_details,
    }
    return PreparedEntry(
        values, sorted({r["code"] for r in stored_reasons}), sorted(subject_refs(stored_subject, stored_details))
    )


def append(session: Session, **entry: Any) -> AuditEntry:
    """Append one entry to the chain in the caller's transaction and return it; ``entry``
    holds ``prepare``'s arguments (``inputs`` is the snapshot a decision read: only its
    digest is stored). Raises ``ValueError`` if the subject or details carry PHI keys.
    """
    prepared = prepare(**entry)
    head_seq, head_hash, recorded_at = _lock_head(session)
    values = prepared.sealed(head_seq, head_hash, recorded_at)
    # Core statements: the entry is never loaded back or changed, so the ORM adds nothing.
    # Statements built once with parameters passed apart, so each compiles once per process.
    session.execute(_INSERT_ENTRY, values)
    seq = values["seq"]
    if prepared.codes:
        session.execute(_INSERT_CODE, [{"code": code, "seq": seq} for code in prepared.codes])
    if prepared.refs:
        session.execute(_INSERT_REF, [{"kind": kind, "value": value, "seq": seq} for kind, value in prepared.refs])
    session.execute(_MOVE_HEAD, {"id": CHAIN_HEAD_ID, "seq": seq, "hash": values["hash"]})
    return AuditEntry(**values)


_ENTRY_TABLE = table_of(AuditEntry)
_INSERT_ENTRY = insert(_ENTRY_TABLE)
_INSERT_CODE = insert(table_of(AuditReasonCode))
_INSERT_REF = insert(table_of(AuditSubjectRef))
_MOVE_HEAD = text("UPDATE audit_chain_head SET seq = :seq, hash = :hash WHERE id = :id")


def _lock_head(session: Session) -> tuple[int, str, datetime]:
    """Lock the chain head and read it with the database's clock, in one round trip on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        seq, head_hash, now = session.execute(
            text("SELECT seq, hash, clock_timestamp() FROM audit_chain_head WHERE id = :id FOR UPDATE"),
            {"id": CHAIN_HEAD_ID},
        ).one()
        now = now.astimezone(UTC)
        remember_clock(session, now)
        return seq, head_hash, now
    # SQLite: the unit of work already holds the database's write lock (BEGIN IMMEDIATE).
    seq, head_hash = session.execute(
        text("SELECT seq, hash FROM audit_chain_head WHERE id = :id"), {"id": CHAIN_HEAD_ID}
    ).one()
    return seq, head_hash, database_now(session)


def iter_entries(session: Session, after_seq: int = 0, batch: int = 5000) -> Iterator[AuditEntry]:
    """Entries with ``seq > after_seq`` in ascending order, read in keyset batches."""
    last = after_seq
    while True:
        rows = session.exec(
            select(AuditEntry).where(col(AuditEntry.seq) > last).order_by(col(AuditEntry.seq)).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def iter_rows(session: Session, after_seq: int = 0, batch: int = 10_000) -> Iterator[Any]:
    """Like ``iter_entries`` but plain rows (attribute access, no ORM identity map):
    what verification and export read, several times faster."""
    table = _ENTRY_TABLE
    last = after_seq
    while True:
        rows = session.execute(core_select(table).where(table.c.seq > last).order_by(table.c.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


#: Columns the hash does not cover: the hash itself, and the MAC over it.
_NOT_HASHED = frozenset({"hash", "mac"})


def _canonical_sql() -> str:
    """PostgreSQL text of an entry's canonical content, built from its columns.

    Each column becomes one complete JSON value under its key, keys in sorted
    order: the ``json`` type holds only valid JSON, strings go through
    ``to_json`` (whose escapes are Python's), instants come out as
    ``isoformat_utc`` writes them (given the default ISO DateStyle). That is
    the text ``canonical_json(entry_content(entry))`` gives, as long as the
    JSON columns were written canonical (the engine's JSON serializer).
    """
    parts = []
    for column in sorted(_ENTRY_TABLE.columns, key=lambda c: c.name):
        name = column.name
        if name in _NOT_HASHED:
            continue
        if isinstance(column.type, JSON):
            value = f"{name}::text"
        elif isinstance(column.type, UTCDateTime):
            # isoformat_utc's text from the ISO DateStyle's (the default): 'T', six fraction
            # digits, '+00:00' (string functions; to_char costs a third of the query).
            utc = (
                f"({name} AT TIME ZONE 'UTC')::text"
                f" || CASE WHEN date_trunc('second', {name}) = {name} THEN '.' ELSE '' END"
            )
            value = f"""'"' || overlay(rpad({utc}, 26, '0') placing 'T' from 11 for 1) || '+00:00"'"""
        elif isinstance(column.type, BigInteger):
            value = f"{name}::text"
        elif isinstance(column.type, Uuid):  # the uuid type's text is hex and dashes: quoting is enough
            value = f"""'"' || {name}::text || '"'"""
        elif isinstance(column.type, String):
            value = f"to_json({name}::text)::text"
        else:  # pragma: no cover - a new column type must be taught here first
            raise TypeError(f"no canonical SQL for audit_entries.{name} ({column.type!r})")
        parts.append(f"""'"{name}":' || coalesce({value}, 'null')""")
    return "'{' || " + " || ',' || ".join(parts) + " || '}'"


_PRESUMED = text(
    f"SELECT seq, prev_hash, hash, {_canonical_sql()} AS canonical, mac FROM audit_entries "
    "WHERE seq > :after ORDER BY seq LIMIT :batch"
)


def _presumed_canonical(
    session: Session, after_seq: int, batch: int = 2_000
) -> Iterator[tuple[int, str, str, PresumedCanonical, str | None]]:
    """Entries as ``(seq, prev_hash, hash, PresumedCanonical, mac)`` from PostgreSQL, in keyset batches
    read one batch ahead in a thread (the database builds the next batch's text while this
    thread hashes); an entry whose text does not hash right is read and canonicalized here.

    Both threads use the session, one statement at a time under ``lock``. Misses come in
    runs (entries written before JSON columns were stored canonical), so a miss loads
    the next ``batch`` entries whole."""
    lock = threading.Lock()
    loaded: dict[int, Any] = {}

    def full(seq: int) -> dict[str, Any]:
        if seq not in loaded:
            with lock:  # one batch of iter_rows: one statement
                rows = list(islice(iter_rows(session, seq - 1, batch), batch))
            loaded.clear()
            loaded.update((row.seq, row) for row in rows)
        return entry_content(loaded[seq])

    def batches() -> Generator[Sequence[Any], None, None]:
        last = after_seq
        while True:
            with lock:
                rows = session.execute(_PRESUMED, {"after": last, "batch": batch}).all()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    for seq, prev_hash, stored_hash, canonical, mac in _read_ahead(batches()):
        yield seq, prev_hash, stored_hash, PresumedCanonical(canonical, partial(full, seq)), mac


def _read_ahead(batches: Generator[Sequence[Any], None, None], depth: int = 2) -> Iterator[Any]:
    """Items of ``batches``, produced by a thread up to ``depth`` batches ahead.

    The caller keeps the two threads from using one connection at once
    (``_presumed_canonical`` takes a lock around each statement); closing the
    iterator (or an error on either side) stops the producer and waits for it,
    so the session is the caller's alone again afterwards.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for rows in batches:
                if not put(rows):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            batches.close()

    producer = threading.Thread(target=produce, name="audit-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        producer.join()


class _MacState:
    """What the MAC check saw while the entries streamed past."""

    def __init__(self, signed_before: bool):
        self.signed_seen = signed_before
        self.unsigned = 0
        self.unsigned_through: int | None = None
        self.bad_seq: int | None = None


def _mac_checked(entries: Any, key: AuditKey, state: _MacState) -> Generator[tuple[Any, ...], None, None]:
    """Pass ``(seq, prev_hash, hash, content)`` on while each entry's MAC checks; stop at the
    first that does not. An entry without a MAC is accepted only before the first signed
    one (written before MACs existed, and counted); after it, a missing MAC is a forgery."""
    matches = key.entry_checker()
    with closing(entries):
        for seq, prev_hash, stored_hash, content, mac in entries:
            if mac is None:
                if state.signed_seen:
                    state.bad_seq = seq
                    return
                state.unsigned += 1
                state.unsigned_through = seq
            elif matches(stored_hash, mac):
                state.signed_seen = True
            else:
                state.bad_seq = seq
                return
            yield seq, prev_hash, stored_hash, content


def verify_chain(
    session: Session, after_seq: int = 0, prev_hash: str = GENESIS_HASH, key: AuditKey | None = None
) -> ChainCheck:
    """Check the chain from ``(after_seq, prev_hash)`` to its end, and against the head row.

    Every entry's hash is recomputed from its content and its MAC checked with ``key`` (the
    process's audit key by default). On PostgreSQL the database builds each entry's
    canonical text (several times faster than decoding and re-encoding it here); any
    entry whose text does not hash to its stored hash is checked again the defining way.
    """
    key = key or current_key()
    if session.get_bind().dialect.name == "postgresql":
        entries: Any = _presumed_canonical(session, after_seq)
    else:
        entries = ((e.seq, e.prev_hash, e.hash, entry_content(e), e.mac) for e in iter_rows(session, after_seq))
    signed_before = bool(
        after_seq and session.execute(text("SELECT mac FROM audit_entries WHERE seq = :s"), {"s": after_seq}).scalar()
    )
    state = _MacState(signed_before)
    macs = _mac_checked(entries, key, state)
    with closing(macs):  # an early stop (an invalid entry) ends the read-ahead thread here
        check = verify_entries(macs, start_seq=after_seq, start_hash=prev_hash)
    check = replace(check, unsigned=state.unsigned, unsigned_through_seq=state.unsigned_through)
    if not check.valid:
        return check
    if state.bad_seq is not None:
        return replace(check, valid=False, first_invalid_seq=state.bad_seq, reason="mac")
    head = session.get(AuditChainHead, CHAIN_HEAD_ID)
    if head is None or head.seq != check.head_seq or head.hash != check.head_hash:
        # The tail was removed (or the head row forged): the first missing entry is invalid.
        return replace(check, valid=False, first_invalid_seq=check.head_seq + 1, reason="head")
    return check
