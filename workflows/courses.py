"""Treatment courses (CLINICAL_RULES.md "Treatment course"): the life cycle
``active → on_hold ⇄ active``, any → ``stopped``, with a coded reason and the
lab results behind every hold, resume and dose change, and the cycle position
(R-CYCLE-1) counted across holds.

Cycle position: the course advances one treatment day per calendar day (in the
program's zone) while it is active; a hold freezes it, and a resume continues
the cycle where the hold left it. Day 1 of cycle 1 is the start date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from .calendar import local_date
from .clinical_params import Regimen
from .lifecycle import Lifecycle, Move, StateChange, command


class CourseStatus(str, Enum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    STOPPED = "stopped"


class CourseReason(str, Enum):
    """The coded reason of a hold, resume, dose change or stop."""

    HEMATOLOGIC = "hematologic"
    RENAL = "renal"
    OTHER_TOXICITY = "other_toxicity"
    PATIENT_REQUEST = "patient_request"
    OTHER = "other"


class CourseLifecycle(Lifecycle):
    """``active → on_hold`` (hold), ``on_hold → active`` (resume, optionally at a new dose),
    ``active → active`` (change_dose), ``active|on_hold → stopped`` (final).

    ``dose_mg`` is persisted: resume and change_dose set it.
    """

    SUBJECT = "treatment course"
    STATUS = CourseStatus
    PERSISTED = ("dose_mg",)

    def __init__(self, status: CourseStatus | str, dose_mg: float):
        super().__init__(status)
        self.dose_mg = dose_mg

    @staticmethod
    def _details(reason_code: CourseReason | None, reason: str | None, lab_ids: tuple[str, ...]) -> dict[str, Any]:
        return {
            "reason_code": reason_code.value if reason_code else None,
            "reason": reason,
            "lab_result_ids": list(lab_ids),
        }

    @command("treatment.held", Move(CourseStatus.ACTIVE, CourseStatus.ON_HOLD))
    def hold(
        self, reason_code: CourseReason, reason: str | None, lab_ids: tuple[str, ...], now: datetime
    ) -> StateChange:
        return self._fire(now, self._details(reason_code, reason, lab_ids))

    @command("treatment.resumed", Move(CourseStatus.ON_HOLD, CourseStatus.ACTIVE))
    def resume(
        self,
        dose_mg: float | None,
        reason_code: CourseReason | None,
        reason: str | None,
        lab_ids: tuple[str, ...],
        now: datetime,
    ) -> StateChange:
        before = self.dose_mg
        change = self._fire(
            now,
            {**self._details(reason_code, reason, lab_ids), "from_dose_mg": before, "to_dose_mg": dose_mg or before},
        )
        if dose_mg is not None:
            self.dose_mg = dose_mg
        return change

    @command("treatment.dose_changed", Move(CourseStatus.ACTIVE, CourseStatus.ACTIVE))
    def change_dose(
        self, dose_mg: float, reason_code: CourseReason, reason: str | None, lab_ids: tuple[str, ...], now: datetime
    ) -> StateChange:
        before = self.dose_mg
        change = self._fire(
            now, {**self._details(reason_code, reason, lab_ids), "from_dose_mg": before, "to_dose_mg": dose_mg}
        )
        self.dose_mg = dose_mg
        return change

    @command("treatment.stopped", Move((CourseStatus.ACTIVE, CourseStatus.ON_HOLD), CourseStatus.STOPPED))
    def stop(self, reason_code: CourseReason, reason: str | None, now: datetime) -> StateChange:
        return self._fire(now, self._details(reason_code, reason, ()))


@dataclass(frozen=True)
class HoldPeriod:
    """A hold from ``start`` until ``end`` (None while it lasts)."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class CourseFacts:
    """What a decision reads about the patient's course (no name, no lab value)."""

    course_id: str
    regimen: Regimen
    start_date: date
    dose_mg: float
    dose_every_days: int
    days_on: int
    cycle_length_days: int
    status: CourseStatus
    status_reason_code: str | None
    status_changed_at: datetime
    thromboprophylaxis: str | None
    on_dialysis: bool
    holds: tuple[HoldPeriod, ...]
    #: R-RENAL-1: the body weight the prescriber recorded, for Cockcroft-Gault (None: unknown).
    weight_kg: float | None = None


@dataclass(frozen=True)
class CyclePosition:
    """R-CYCLE-1: ``number`` and ``day`` (1-based); ``started`` False before the start date."""

    number: int
    day: int
    dosing_day: bool
    started: bool
    on_hold: bool


def treatment_days(course: CourseFacts, on: date, tz: ZoneInfo) -> int:
    """Calendar days from the start date to ``on`` during which the course was not on hold."""
    elapsed = (on - course.start_date).days
    held = 0
    for hold in course.holds:
        first = max(local_date(hold.start, tz), course.start_date)
        last = on if hold.end is None else min(local_date(hold.end, tz), on)
        held += max(0, (last - first).days)
    return elapsed - held


def position_after(course: CourseFacts, days: int) -> tuple[int, int, bool]:
    """(cycle number, cycle day, dosing day) of the treatment day ``days`` after day 1."""
    number, offset = divmod(days, course.cycle_length_days)
    day = offset + 1
    return number + 1, day, day <= course.days_on


def cycle_position(course: CourseFacts, now: datetime, tz: ZoneInfo) -> CyclePosition:
    today = local_date(now, tz)
    on_hold = course.status is CourseStatus.ON_HOLD
    if today < course.start_date:
        return CyclePosition(1, 1, True, False, on_hold)
    number, day, dosing = position_after(course, treatment_days(course, today, tz))
    return CyclePosition(number, day, dosing, True, on_hold)


def dosing_days(course: CourseFacts, now: datetime, tz: ZoneInfo, days_supply: int) -> int:
    """R-CYCLE-2: dosing days among the next ``days_supply`` treatment days from today
    (from the start date when the course has not started), one dose every ``dose_every_days``."""
    today = local_date(now, tz)
    first = max(0, treatment_days(course, today, tz)) if today >= course.start_date else 0
    dosing = [position_after(course, first + i)[2] for i in range(days_supply)]
    taken = 0
    since_last = course.dose_every_days  # the first dosing day takes a dose
    for is_dosing in dosing:
        if is_dosing and since_last >= course.dose_every_days:
            taken += 1
            since_last = 0
        since_last += 1
    return taken


def cycle_calendar(course: CourseFacts, now: datetime, tz: ZoneInfo, cycles_ahead: int = 1) -> list[dict[str, Any]]:
    """The course's cycles from the start date to the end of the cycle ``cycles_ahead`` after
    today's: each with its number and the calendar dates of its days (held days excluded)."""
    today = local_date(now, tz)
    current = cycle_position(course, now, tz).number
    last_cycle = current + cycles_ahead
    cycles: dict[int, dict[str, Any]] = {}
    day = course.start_date
    limit = today + timedelta(days=course.cycle_length_days * (cycles_ahead + 1))
    while day <= limit:
        held = any(
            local_date(h.start, tz) <= day and (h.end is None or day < local_date(h.end, tz)) for h in course.holds
        ) or (course.status is CourseStatus.ON_HOLD and day >= today)
        if not held:
            number, cday, dosing = position_after(course, treatment_days(course, day, tz))
            if number > last_cycle:
                break
            entry = cycles.setdefault(number, {"number": number, "start": day, "end": day, "days": []})
            entry["end"] = day
            entry["days"].append({"date": day, "day": cday, "dosing": dosing})
        day += timedelta(days=1)
    return list(cycles.values())
