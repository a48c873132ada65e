"""The auditor's charts (UI.md, Auditor): decisions per day by outcome and the most
frequent denial reasons for the filtered range, counted by the database, checked here
against the decisions the API returned and the log's own entries."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlmodel import select

from rems_service.db.models import AuditEntry
from rems_service.services import audit_log
from rems_service.services.audit_log import CHART_DEFAULT_DAYS, CHART_MAX_DAYS, AuditFilter
from tests.api.test_audit import history as audit_history  # noqa: F401 - a fixture
from tests.helpers import NOW, utc
from workflows.actors import Actor

DECISIONS = ("authorization.decided", "dispense.decided")


def auditor(world) -> Actor:
    return Actor(user_id=uuid.uuid4(), role="auditor")


def logged(world) -> list[AuditEntry]:
    with world.runtime.uow() as uow:
        return list(uow.session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all())


def charts(world, f: AuditFilter, now=NOW + timedelta(days=2)):
    return audit_log.charts(world.runtime.uow(), auditor(world), now, world.runtime.program, f)


@pytest.mark.usefixtures("audit_history")
def test_decisions_per_day_by_outcome_match_the_log(world):
    result = charts(world, AuditFilter())
    entries = [e for e in logged(world) if e.action in DECISIONS]
    expected = Counter((e.effective_at.date(), e.outcome) for e in entries)  # the program's zone is UTC
    shown = {(d.day, outcome): n for d in result.days for outcome, n in d.counts.items()}
    assert shown == dict(expected)
    # The history's decisions: two days, each with approvals and denials.
    assert {day for day, _ in expected} == {date(2026, 6, 15), date(2026, 6, 16)}
    assert {outcome for _, outcome in expected} == {"approved", "denied"}


@pytest.mark.usefixtures("audit_history")
def test_default_range_is_the_last_days_through_today_with_empty_days(world):
    result = charts(world, AuditFilter())
    assert len(result.days) == CHART_DEFAULT_DAYS
    assert result.days[-1].day == date(2026, 6, 17)  # today, at now = NOW + 2 days
    assert [d.day for d in result.days] == sorted(d.day for d in result.days)
    assert all(d.total == 0 for d in result.days if d.day < date(2026, 6, 15))
    assert not result.truncated


@pytest.mark.usefixtures("audit_history")
def test_top_denial_reasons_count_every_code_of_every_denial(world):
    result = charts(world, AuditFilter())
    denials = [e for e in logged(world) if e.action in DECISIONS and e.outcome == "denied"]
    expected = Counter(code for e in denials for code in {r["code"] for r in e.reasons})
    assert dict(result.denial_reasons) == dict(expected)
    counts = [n for _code, n in result.denial_reasons]
    assert counts == sorted(counts, reverse=True)
    assert "AUTHORIZATION_ALREADY_USED" in dict(result.denial_reasons)


@pytest.mark.usefixtures("audit_history")
def test_filters_narrow_both_charts(world):
    f = AuditFilter(action="dispense.decided", pharmacy_id=world.other_pharmacy.id)
    result = charts(world, f)
    entries = [e for e in logged(world) if e.action == "dispense.decided" and e.pharmacy_id == world.other_pharmacy.id]
    assert sum(d.total for d in result.days) == len(entries) == 1
    assert dict(result.denial_reasons) == {"AUTHORIZATION_ALREADY_USED": 1}


@pytest.mark.usefixtures("audit_history")
def test_range_bounds_are_respected_and_long_ranges_show_their_last_days(world):
    one_day = charts(world, AuditFilter(since=utc(2026, 6, 16), until=utc(2026, 6, 17)))
    assert [d.day for d in one_day.days] == [date(2026, 6, 16)]
    day_two = [e for e in logged(world) if e.action in DECISIONS and e.effective_at.date() == date(2026, 6, 16)]
    assert one_day.days[0].total == len(day_two)
    long = charts(world, AuditFilter(since=utc(2025, 1, 1), until=utc(2026, 6, 17)))
    assert long.truncated and len(long.days) == CHART_MAX_DAYS
    assert long.days[-1].day == date(2026, 6, 16)
    assert sum(d.total for d in long.days) == len([e for e in logged(world) if e.action in DECISIONS])
    empty = charts(world, AuditFilter(since=utc(2026, 6, 17), until=utc(2026, 6, 17)))
    assert empty.days == [] and empty.denial_reasons == []


@pytest.mark.usefixtures("audit_history")
def test_reading_the_charts_is_recorded(world):
    before = len(logged(world))
    charts(world, AuditFilter(outcome="denied"))
    reads = [e for e in logged(world)[before:] if e.action == "audit.read"]
    assert len(reads) == 1
    assert reads[0].details["operation"] == "charts"
    assert reads[0].details["filters"]["outcome"] == "denied"
