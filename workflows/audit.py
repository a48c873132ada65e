"""The audit chain's content rules: canonical serialization and hashing.

Each entry's hash is SHA-256 over the previous entry's hash and the
canonical JSON of the entry's own content, so changing, removing,
reordering or inserting any entry breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, NamedTuple
from uuid import UUID

from .clock import isoformat_utc

#: The ``prev_hash`` of the first entry of a chain.
GENESIS_HASH = "0" * 64

#: Outcomes an audit entry can record.
OUTCOME_APPROVED = "approved"
OUTCOME_DENIED = "denied"
OUTCOME_COMPLETED = "completed"

#: The fronts a request can come through (INTEROP.md): the JSON API, the portal, NCPDP
#: SCRIPT, FHIR and CDS Hooks. A decision and its audit entry record which one.
CHANNEL_API = "api"
CHANNELS = (CHANNEL_API, "portal", "ncpdp", "fhir", "cds-hooks")


@dataclass(frozen=True)
class Origin:
    """Where a request came from: its channel and, for a standard message, the SHA-256 of
    the raw message (the message itself is never stored)."""

    channel: str = CHANNEL_API
    message_digest: str | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")

    def as_details(self) -> dict[str, str]:
        """What the audit entry's details carry."""
        if self.message_digest is None:
            return {"channel": self.channel}
        return {"channel": self.channel, "message_digest": self.message_digest}


#: The JSON API's origin (every decision made before channels were recorded came through it).
API_ORIGIN = Origin()
#: Requests made in the portal (UI.md): the same services, recorded as the portal's.
PORTAL_ORIGIN = Origin(channel="portal")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} has no canonical form")


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTC instants, UUIDs as text."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default, allow_nan=False
    )


def digest(value: Any) -> str:
    """Hex SHA-256 of ``value``'s canonical JSON (the audit's ``inputs_digest``)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """The hash of an entry: SHA-256 over its predecessor's hash and its canonical content."""
    return _hash_text(prev_hash, canonical_json(content))


def _hash_text(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical).encode("utf-8")).hexdigest()


class PresumedCanonical(NamedTuple):
    """An entry's content as text presumed to be its canonical JSON (built by the
    database from the stored columns), with a way to build the content itself.

    Verification hashes ``text`` first; only if that does not give the stored
    hash is the content built and hashed the defining way. Accepting ``text``
    is sound when it is assembled from each column as one complete JSON value
    under fixed keys: equal to the canonical text that was hashed (SHA-256),
    it parses to the very content that was hashed.
    """

    text: str
    content: Callable[[], Mapping[str, Any]]


def hash_matches(prev_hash: str, content: Mapping[str, Any] | PresumedCanonical, stored_hash: str) -> bool:
    """Whether ``content`` after ``prev_hash`` hashes to ``stored_hash``."""
    if isinstance(content, PresumedCanonical):
        if _hash_text(prev_hash, content.text) == stored_hash:
            return True
        content = content.content()
    return chain_hash(prev_hash, content) == stored_hash


@dataclass(frozen=True)
class ChainCheck:
    """The result of checking a run of entries."""

    valid: bool
    checked: int
    head_seq: int
    head_hash: str
    first_invalid_seq: int | None
    #: Why ``first_invalid_seq`` fails: ``sequence`` (missing or extra entry), ``link``
    #: (``prev_hash`` is not its predecessor's hash), ``hash`` (content changed), ``mac``
    #: (the keyed MAC does not check, or is missing after signed entries), ``head`` (the
    #: head row names another entry), ``anchor`` (a published anchor is not in the chain).
    reason: str | None = None
    #: Entries without a MAC (written before MACs existed): how many, and the last one.
    unsigned: int = 0
    unsigned_through_seq: int | None = None


def verify_entries(
    entries: Iterable[tuple[int, str, str, Mapping[str, Any] | PresumedCanonical]],
    start_seq: int = 0,
    start_hash: str = GENESIS_HASH,
) -> ChainCheck:
    """Check ``(seq, prev_hash, hash, content)`` tuples in ascending order.

    The run must continue the chain at ``(start_seq, start_hash)``: sequence
    numbers without gaps, each ``prev_hash`` equal to its predecessor's hash
    and each ``hash`` recomputed from the content. Returns the first sequence
    number that fails (for a missing entry, the number that should be there).
    """
    expected_seq, prev = start_seq, start_hash
    checked = 0
    for seq, prev_hash, stored_hash, content in entries:
        expected_seq += 1
        reason = (
            "sequence"
            if seq != expected_seq
            else "link"
            if prev_hash != prev
            else None
            if hash_matches(prev_hash, content, stored_hash)
            else "hash"
        )
        if reason is not None:
            return ChainCheck(False, checked, expected_seq - 1, prev, expected_seq, reason)
        prev = stored_hash
        checked += 1
    return ChainCheck(True, checked, expected_seq, prev, None)
