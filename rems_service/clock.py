"""The request clock: one instant per request, settable in sandbox and test.

With ``REMS_ENV=sandbox`` or ``test``, ``X-Rems-Now: <ISO datetime with
offset>`` evaluates the request as if that were the time; records keep it as
the effective time next to the real server time. Elsewhere the header is
refused with 400, so production can never be time-shifted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, current_app, g, request

from rems_service.services.errors import ServiceError

CLOCK_HEADER = "X-Rems-Now"


class BadClockHeader(ServiceError):
    status = 400


def parse_clock_header(value: str) -> datetime:
    """Parse the header; raise ``BadClockHeader`` unless it is an ISO instant with an offset."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadClockHeader(
            f"{CLOCK_HEADER} is not an ISO 8601 datetime.", {CLOCK_HEADER: ["Not an ISO 8601 datetime."]}
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise BadClockHeader(
            f"{CLOCK_HEADER} needs a UTC offset.", {CLOCK_HEADER: ["Needs a UTC offset, e.g. +00:00."]}
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before the calendar starts in UTC
        raise BadClockHeader(
            f"{CLOCK_HEADER} is outside the calendar in UTC.", {CLOCK_HEADER: ["Outside years 1 to 9999 in UTC."]}
        ) from None


def request_now() -> datetime:
    """The effective time of the current request (views read it as ``ctx().now``)."""
    now: datetime = g.now
    return now


def init_app(app: Flask) -> None:
    @app.before_request
    def _set_clock() -> None:
        g.now = datetime.now(UTC)
        header = request.headers.get(CLOCK_HEADER)
        if header is None:
            return
        if not current_app.config.get("ALLOW_CLOCK_HEADER"):
            raise BadClockHeader(
                f"{CLOCK_HEADER} is only accepted in the sandbox and test environments.",
                {CLOCK_HEADER: ["Not accepted in this environment."]},
            )
        g.now = parse_clock_header(header)
