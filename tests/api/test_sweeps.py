"""The periodic sweeps: mirror expiries into statuses, remind once, renew pharmacies,
and read only the rows that are due."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import event
from sqlmodel import select

from rems_service.cli import main
from rems_service.db.models import AuditEntry, Authorization, Dispense, OutboxEvent, Patient, Pharmacy
from rems_service.jobs import tasks
from rems_service.services import sweeps
from tests.helpers import (
    ADULT_FRP,
    ADULT_MALE,
    NOW,
    add_survey,
    add_test,
    approved_authorization,
    complete_answers,
    dispense,
    enrolled,
    make_pharmacy,
)
from workflows.patients import RiskCategory
from workflows.surveys import evaluate_survey


def _events(runtime, kind):
    with runtime.session() as s:
        return s.exec(select(OutboxEvent).where(OutboxEvent.type == kind)).all()


def test_expiries_and_lapses_are_mirrored_and_the_authorization_released(world):
    patient, decision = approved_authorization(world)
    confirmation = dispense(world, decision["authorization_number"], patient["rems_patient_id"]).json[
        "confirmation_number"
    ]
    runtime = world.runtime
    assert tasks.run_sweeps(runtime, NOW + timedelta(hours=23)).get("confirmations_lapsed", 0) == 0
    report = tasks.run_sweeps(runtime, NOW + timedelta(hours=24))
    assert report["confirmations_lapsed"] == 1
    with runtime.session() as s:
        assert s.exec(select(Dispense)).one().status.value == "lapsed"
        assert s.exec(select(Authorization)).one().status.value == "issued"
    assert tasks.run_sweeps(runtime, NOW + timedelta(hours=24)).get("confirmations_lapsed", 0) == 0  # idempotent
    report = tasks.run_sweeps(runtime, NOW + timedelta(days=30))
    assert report["authorizations_expired"] == 1
    with runtime.session() as s:
        assert s.exec(select(Authorization)).one().status.value == "expired"
    assert [e.payload["authorization_number"] for e in _events(runtime, "authorization.expired")] == [
        decision["authorization_number"]
    ]
    assert confirmation


def _trail(runtime, auth_id):
    """(action, from_state, to_state) of every audit entry about the authorization or its dispense."""
    with runtime.session() as s:
        entries = s.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
    return [
        (e.action, e.details.get("from_state"), e.details.get("to_state"))
        for e in entries
        if e.subject.get("authorization_id") == str(auth_id) and e.action != "authorization.decided"
    ]


def test_an_expiry_job_that_runs_before_the_lapse_sweep_releases_then_expires(world):
    """R-DISP-2 then R-AUTH-3 through real transitions: the confirmation lapses, the
    authorization is released (confirmed -> issued) and then expires (issued -> expired)."""
    patient, decision = approved_authorization(world)
    dispense(world, decision["authorization_number"], patient["rems_patient_id"])
    runtime = world.runtime
    with runtime.session() as s:
        auth = s.exec(select(Authorization)).one()
    assert sweeps.expire_authorization(runtime.uow(), runtime.program, auth.expires_at, auth.id) is True
    with runtime.session() as s:
        assert s.exec(select(Dispense)).one().status.value == "lapsed"
        assert s.exec(select(Authorization)).one().status.value == "expired"
    assert _trail(runtime, auth.id)[-3:] == [
        ("dispense.lapsed", "confirmed", "lapsed"),
        ("authorization.released", "confirmed", "issued"),
        ("authorization.expired", "issued", "expired"),
    ]


def test_a_lapse_mirrored_by_the_expiry_job_before_expiry_frees_the_authorization(world):
    """R-DISP-2: the job finds the confirmation lapsed but the authorization still valid; it
    mirrors the lapse and releases the authorization (it no longer stays stored 'confirmed')."""
    patient, decision = approved_authorization(world)
    dispense(world, decision["authorization_number"], patient["rems_patient_id"])
    runtime = world.runtime
    with runtime.session() as s:
        auth = s.exec(select(Authorization)).one()
    assert sweeps.expire_authorization(runtime.uow(), runtime.program, NOW + timedelta(hours=25), auth.id) is False
    with runtime.session() as s:
        assert s.exec(select(Dispense)).one().status.value == "lapsed"
        assert s.exec(select(Authorization)).one().status.value == "issued"
    assert _trail(runtime, auth.id)[-2:] == [
        ("dispense.lapsed", "confirmed", "lapsed"),
        ("authorization.released", "confirmed", "issued"),
    ]


def test_an_authorization_about_to_expire_unused_is_announced_once(world):
    _, decision = approved_authorization(world)
    runtime = world.runtime
    tasks.run_sweeps(runtime, NOW + timedelta(days=28))
    assert _events(runtime, "authorization.expiring") == []
    for _ in range(3):
        tasks.run_sweeps(runtime, NOW + timedelta(days=29, hours=1))
    (notice,) = _events(runtime, "authorization.expiring")
    assert notice.payload["authorization_number"] == decision["authorization_number"] and notice.payload["action"]


def test_pregnancy_test_and_survey_reminders_come_two_days_ahead_once(world):
    patient = enrolled(world, ADULT_FRP)
    add_test(world, patient["id"], NOW - timedelta(days=12), at=NOW - timedelta(days=11))
    add_test(world, patient["id"], NOW - timedelta(hours=2))
    runtime = world.runtime
    # Before therapy the newest negative test counts 7 days: due at the start of day 8.
    tasks.run_sweeps(runtime, NOW + timedelta(days=4))
    assert _events(runtime, "pregnancy_test.due") == []
    tasks.run_sweeps(runtime, NOW + timedelta(days=6))
    tasks.run_sweeps(runtime, NOW + timedelta(days=6, hours=5))
    (due,) = _events(runtime, "pregnancy_test.due")
    assert due.payload["rems_patient_id"] == patient["rems_patient_id"] and due.payload["overdue"] is False
    surveys = _events(runtime, "patient_survey.due")
    assert len(surveys) == 1 and surveys[0].payload["overdue"] is True  # never completed one


def test_pharmacy_renewal_warning_then_expiry(world):
    runtime = world.runtime
    with runtime.session() as s:
        until = s.get(Pharmacy, world.pharmacy.id).certified_until
    tasks.run_sweeps(runtime, until - timedelta(days=31))
    assert _events(runtime, "pharmacy.certification_expiring") == []
    tasks.run_sweeps(runtime, until - timedelta(days=29))
    tasks.run_sweeps(runtime, until - timedelta(days=20))
    assert len(_events(runtime, "pharmacy.certification_expiring")) == 2  # both pharmacies, once each
    assert tasks.run_sweeps(runtime, until - timedelta(seconds=1)).get("pharmacies_expired", 0) == 0
    report = tasks.run_sweeps(runtime, until + timedelta(seconds=5))  # the second pharmacy was certified a moment later
    assert report["pharmacies_expired"] == 2
    with runtime.session() as s:
        assert {p.status.value for p in s.exec(select(Pharmacy)).all()} == {"expired"}


def test_sweeps_read_only_due_rows(world):
    """Every sweep query is bounded by an indexed due-time condition (no full-table reads)."""
    runtime = world.runtime
    statements: list[str] = []

    def capture(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", capture)
    try:
        sweeps.run(runtime.uow, runtime.program, NOW)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", capture)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM" in s.upper().split()]
    assert selects
    for statement in selects:
        upper = statement.upper()
        assert any(
            col in upper
            for col in (
                "EXPIRES_AT",
                "CONFIRMATION_EXPIRES_AT",
                "NEXT_TEST_DUE_AT",
                "NEXT_SURVEY_DUE_AT",
                "CERTIFIED_UNTIL",
            )
        ), statement


@pytest.fixture
def rems(monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*args):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return run


def test_rems_jobs_sweep_runs_the_sweeps(runtime, rems):
    make_pharmacy(runtime)
    out = rems("jobs", "sweep")
    assert out.get("events_relayed", 0) >= 2  # the pharmacy's registration and certification
    assert rems("jobs", "sweep").get("events_relayed", 0) == 0


def test_rems_jobs_refresh_reminders_recomputes_a_mirror_an_incomplete_survey_moved(world, rems):
    """A survey-due mirror computed while an incomplete survey still counted (before R-SURV-3)
    stays late until `rems jobs refresh-reminders` recomputes it from the complete surveys."""
    male = enrolled(world, ADULT_MALE)
    pid = uuid.UUID(male["id"])
    done = NOW - timedelta(days=40)
    assert add_survey(world, male["id"], complete_answers("MALE_ADULT"), completed_at=done).status_code == 201
    with world.runtime.session() as s:
        row = s.get(Patient, pid)
        row.next_survey_due_at = NOW + timedelta(days=26)  # as an incomplete survey of 2 days ago made it
        s.add(row)
        s.commit()
    assert rems("jobs", "refresh-reminders")["patients_refreshed"] >= 1
    expected = evaluate_survey(RiskCategory.MALE_ADULT, done, world.runtime.program.in_force(NOW), NOW).next_due_at
    assert expected is not None and expected < NOW  # overdue: the prescriber is reminded now
    with world.runtime.session() as s:
        assert s.get(Patient, pid).next_survey_due_at == expected
