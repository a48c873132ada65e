"""Keyset paging with opaque cursors, shared by the list use cases.

A page is ordered by a unique key of columns that never change once a row
exists (a creation time, then the id), and the next page starts strictly after
the last key returned — never at an offset. Rows inserted between two page
fetches therefore take their own place in the order: none of the rows already
there is skipped or repeated, whatever the new rows' keys are.

A cursor is that last key as URL-safe base64 of JSON, tagged with the listing
it belongs to (a cursor of one listing, or one sort order, is refused by
another). It names no filter, so callers send the same filters with each page.
It holds ids and instants only, never a name (names are PHI).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from workflows.actors import Actor, UserRole

from .errors import Forbidden, Invalid

#: The largest page any listing serves, and the default size.
MAX_LIMIT = 200
DEFAULT_LIMIT = 50

T = TypeVar("T")

#: The types a key part may have; each is written as JSON text and read back by its type.
KeyPart = datetime | uuid.UUID | int | str


def _dump(part: KeyPart) -> Any:
    if isinstance(part, datetime):
        if part.tzinfo is None:
            raise ValueError("a cursor instant needs a time zone")
        return part.isoformat()
    if isinstance(part, uuid.UUID):
        return str(part)
    return part


def _load(kind: type, value: Any) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError
        instant = datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise ValueError
        return instant
    if kind is uuid.UUID:
        if not isinstance(value, str):
            raise ValueError
        return uuid.UUID(value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**63:
            raise ValueError  # beyond a database's bigint: no row has it
        return value
    if not isinstance(value, kind):
        raise ValueError
    return value


def encode_cursor(listing: str, key: Sequence[KeyPart]) -> str:
    """The opaque cursor continuing ``listing`` after the row whose sort key is ``key``."""
    text = json.dumps({"l": listing, "k": [_dump(p) for p in key]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, listing: str, types: Sequence[type]) -> tuple[Any, ...]:
    """The key ``cursor`` carries, each part read as the matching type of ``types``.

    Raises ``Invalid`` (422, field ``cursor``) for anything this service did not
    issue for ``listing``.
    """
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or data.get("l") != listing:
            raise ValueError
        parts = data["k"]
        if not isinstance(parts, list) or len(parts) != len(types):
            raise ValueError
        return tuple(_load(kind, value) for kind, value in zip(types, parts, strict=True))
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            "The cursor is not one this service issued for this listing.", {"cursor": ["Invalid cursor."]}
        ) from None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def page_of(rows: Sequence[T], limit: int, listing: str, key: Callable[[T], Sequence[KeyPart]]) -> Page[T]:
    """Cut ``rows`` — fetched with ``limit + 1`` so that a further page shows — to a page."""
    more = len(rows) > limit
    items = list(rows[:limit])
    return Page(items, encode_cursor(listing, key(items[-1])) if more and items else None)


@dataclass(frozen=True)
class PageRequest:
    """Where a page starts (the decoded cursor key, or None for the first) and how long it is."""

    after: tuple[Any, ...] | None
    limit: int

    @classmethod
    def of(cls, cursor: str | None, limit: int, listing: str, types: Sequence[type]) -> PageRequest:
        if not 1 <= limit <= MAX_LIMIT:
            raise Invalid(f"limit must be 1 to {MAX_LIMIT}.", {"limit": [f"Must be 1 to {MAX_LIMIT}."]})
        return cls(decode_cursor(cursor, listing, types) if cursor else None, limit)

    @property
    def fetch(self) -> int:
        """How many rows to read: one more than the page, to learn whether another follows."""
        return self.limit + 1


def prescriber_owner(actor: Actor, what: str) -> dict[str, Any]:
    """Whose rows a prescriber-owned listing holds: every one for admins, the caller's own for a
    prescriber; ``Forbidden`` for any other role."""
    if actor.is_admin:
        return {"everyone": True}
    if actor.role == UserRole.PRESCRIBER.value and actor.prescriber_id is not None:
        return {"prescriber_id": actor.prescriber_id}
    raise Forbidden(f"The {actor.role} role may not list {what}.")
