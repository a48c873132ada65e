"""Time for the domain: aware UTC datetimes only, passed in explicitly."""

from __future__ import annotations

from datetime import UTC, datetime


def ensure_utc(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC; raise ``ValueError`` if it is naive.

    A naive datetime has no defined instant, so accepting one would silently
    shift every validity window by the server's offset.
    """
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must carry a UTC offset")
    return value.astimezone(UTC)


def isoformat_utc(value: datetime) -> str:
    """Canonical text of an instant: ISO 8601, UTC, microseconds, ``+00:00``."""
    return ensure_utc(value).isoformat(timespec="microseconds")
