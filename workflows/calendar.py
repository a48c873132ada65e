"""Calendar-day arithmetic in the program's time zone (REMS_RULES.md: "Day
windows are calendar days in the program's time zone; hour windows are exact
elapsed time")."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .clock import ensure_utc


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar date of ``instant`` in ``tz``."""
    return ensure_utc(instant).astimezone(tz).date()


def days_between(earlier: datetime, later: datetime, tz: ZoneInfo) -> int:
    """Whole calendar days from ``earlier``'s date to ``later``'s date in ``tz``."""
    return (local_date(later, tz) - local_date(earlier, tz)).days


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz``, in UTC."""
    return ensure_utc(datetime.combine(day, time.min, tzinfo=tz))


def valid_until(collected: datetime, interval_days: int, tz: ZoneInfo) -> datetime:
    """The instant a thing dated ``collected`` stops counting under an
    ``interval_days`` window: the start of the day after its last valid day."""
    return start_of_day(local_date(collected, tz) + timedelta(days=interval_days + 1), tz)


def instant_text(instant: datetime) -> str:
    """An instant as people read it in a message: ``2026-06-16 12:00 UTC``."""
    return ensure_utc(instant).strftime("%Y-%m-%d %H:%M UTC")


def last_valid_day(start: datetime, interval_days: int, tz: ZoneInfo) -> date:
    """The last calendar day on which a thing dated ``start`` still counts under an
    ``interval_days`` window (the day before ``valid_until``)."""
    return local_date(start, tz) + timedelta(days=interval_days)


def add_years(day: date, years: int) -> date:
    """``day`` plus whole years; 29 February becomes 1 March in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)
