"""PostgreSQL's short decision path (``rems_service.db.decision_sql``) reads exactly the facts
the ORM path reads, and writes exactly what it writes: the same patient, course, labs,
tests, surveys, prior dispense, participants and holding confirmation, on a patient with
all of them; the same stored JSON text; the same statements counted per decision."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from rems_service.db import decision_sql
from rems_service.db.repository import DispenseInputs, Repository
from tests.api.test_clinical import add_lab, start_course
from tests.helpers import (
    ADULT_FRP,
    NOW,
    add_survey,
    add_test,
    authorize,
    complete_answers,
    dispense,
    ready_patient,
)

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])
DAY = timedelta(days=1)


def _rich_patient(world):
    """A patient of reproductive potential with several tests and surveys (the newest
    incomplete), a course held and resumed at a changed dose, labs of every advisory kind
    (several M-protein results), and a completed dispense."""
    patient = ready_patient(world, ADULT_FRP)
    pid = patient["id"]
    add_test(world, pid, NOW - 40 * DAY, at=NOW - 39 * DAY, sensitivity=20)
    add_survey(world, pid, complete_answers("FRP_ADULT"), completed_at=NOW - 20 * DAY)
    incomplete = add_survey(world, pid, {"used_two_methods": True}, completed_at=NOW - 10 * DAY)
    assert incomplete.status_code in (201, 422), incomplete.json
    course = start_course(world, patient, start_date=(NOW - 30 * DAY).date().isoformat(), weight_kg=70)
    api = world.api.as_(world.prescriber_token).at(NOW - 20 * DAY)
    assert api.post(f"/api/v1/courses/{course['id']}/hold", json={"reason_code": "other"}).status_code == 200
    api = world.api.as_(world.prescriber_token).at(NOW - 15 * DAY)
    assert api.post(f"/api/v1/courses/{course['id']}/resume", json={}).status_code == 200
    for loinc, value, unit, days in (
        ("751-8", 2.1, "10*3/uL", 3),
        ("751-8", 1.9, "10*3/uL", 2),
        ("777-3", 151, "10*3/uL", 2),
        ("718-7", 11.2, "g/dL", 2),
        ("2160-0", 1.13, "mg/dL", 2),
        ("33358-3", 2.5, "g/dL", 25),
        ("33358-3", 1.7, "g/dL", 12),
        ("33358-3", 1.2, "g/dL", 2),
    ):
        assert add_lab(world, patient, loinc, value, unit, at=NOW - days * DAY).status_code == 201
    return patient


def _orm(repo: Repository) -> Repository:
    repo._postgresql = False  # the ORM path, as SQLite takes it, on the same transaction
    return repo


def _typed_values(row):
    """Every column's value with its Python type (the short path builds its rows itself)."""
    return None if row is None else {k: (type(v), v) for k, v in decision_sql.row_values(row).items()}


def _same_dispense_inputs(short: DispenseInputs, orm: DispenseInputs) -> None:
    assert _typed_values(short.authorization) == _typed_values(orm.authorization)
    assert _typed_values(short.patient) == _typed_values(orm.patient)
    assert (short.holding.id if short.holding else None) == (orm.holding.id if orm.holding else None)
    assert (short.pharmacy, short.pharmacist, short.facts, short.prior, short.clinical) == (
        orm.pharmacy,
        orm.pharmacist,
        orm.facts,
        orm.prior,
        orm.clinical,
    )


def test_the_short_reads_equal_the_orm_reads(world):
    patient = _rich_patient(world)
    r = authorize(world, patient)
    assert r.status_code == 201, r.json
    number = r.json.get("authorization_number")
    runtime = world.runtime
    with runtime.uow() as uow:
        pid = uuid.UUID(patient["id"])
        prescriber_id = world.prescriber.id
        short = uow.repo.authorization_inputs(pid, prescriber_id)
        orm = _orm(Repository(uow.session)).authorization_inputs(pid, prescriber_id)
        assert short is not None and orm is not None
        assert short.clinical is not None and short.clinical.labs and short.clinical.facts.holds
        assert len(short.facts.tests) >= 3 and short.last_survey_at is not None
        assert (short.prescriber_status, short.facts, short.last_survey_at, short.clinical) == (
            orm.prescriber_status,
            orm.facts,
            orm.last_survey_at,
            orm.clinical,
        )
        unknown = uow.repo.authorization_inputs(pid, uuid.uuid4())
        assert unknown is not None and unknown.prescriber_status.value == "decertified"
    if number is None:
        pytest.fail(f"the rich patient was not authorized: {r.json}")
    pharmacy_id = world.pharmacy.id
    with runtime.session() as s:
        user_id = s.execute(
            text("SELECT id FROM users WHERE pharmacy_id = :p AND role = 'pharmacist'"), {"p": pharmacy_id}
        ).scalar_one()
    cases = [
        (number, patient["rems_patient_id"]),  # the patient's own: every fact
        (number, "RP-00000-00000"),  # another patient presented: no patient fact
        ("RA-AAAAA-AAAAA-AAAAA", patient["rems_patient_id"]),  # no such authorization
    ]
    for presented_number, rems_id in cases:
        with runtime.uow() as uow:
            short_d = uow.repo.dispense_inputs(presented_number, rems_id, pharmacy_id, user_id)
            orm_d = _orm(Repository(uow.session)).dispense_inputs(presented_number, rems_id, pharmacy_id, user_id)
            _same_dispense_inputs(short_d, orm_d)
    # A live confirmation holds the authorization; a completed earlier dispense is the prior one.
    assert dispense(world, number, patient["rems_patient_id"]).json["decision"] == "approved"
    with runtime.uow() as uow:
        short_d = uow.repo.dispense_inputs(number, patient["rems_patient_id"], pharmacy_id, user_id)
        orm_d = _orm(Repository(uow.session)).dispense_inputs(number, patient["rems_patient_id"], pharmacy_id, user_id)
        assert short_d.holding is not None
        _same_dispense_inputs(short_d, orm_d)


def test_a_decision_takes_five_statements_with_its_authentication(world):
    """The statements of an authorization and a dispense decision on PostgreSQL (``bench/README.md``): the token,
    the locking statement, the facts, the head with the authorization's change, the write."""
    patient = _rich_patient(world)
    engine = world.runtime.engine
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split()[0] + " " + " ".join(statement.split()[1:4]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        # The authorization: the token, the patient's lock, the facts, the head, the write.
        authorized = authorize(world, patient)
        assert authorized.json["decision"] == "approved" and len(statements) == 5, statements
        number = authorized.json["authorization_number"]
        statements.clear()
        approved = dispense(world, number, patient["rems_patient_id"])
        first_count = len(statements)
        statements.clear()
        denied = dispense(world, "RA-AAAAA-AAAAA-AAAAA", patient["rems_patient_id"])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert approved.json["decision"] == "approved", approved.json
    assert denied.json["decision"] == "denied"
    assert first_count == 5 and len(statements) == 5, statements


def test_the_short_write_stores_canonical_json_and_a_verifiable_chain(world):
    """Every JSON column the one write statement fills holds the canonical text the ORM path
    stores (what verification hashes as stored), and the chain verifies with MACs."""
    from rems_service.services import audit_log
    from workflows.audit import canonical_json

    patient = _rich_patient(world)
    approved = dispense(world, authorize(world, patient).json["authorization_number"], patient["rems_patient_id"])
    assert approved.json["decision"] == "approved", approved.json
    with world.runtime.session() as s:
        for table, column in (
            ("audit_entries", "subject"),
            ("audit_entries", "details"),
            ("audit_entries", "reasons"),
            ("decisions", "snapshot"),
            ("decisions", "reasons"),
            ("outbox_events", "payload"),
        ):
            for stored, value in s.execute(text(f"SELECT {column}::text, {column} FROM {table}")):
                assert stored == canonical_json(value), (table, column)
    verification = audit_log.verify(world.runtime.uow(), None, NOW)
    assert verification.check.valid and verification.check.unsigned == 0, verification.as_dict()
    assert verification.check.checked > 20


def test_a_driver_error_on_the_short_path_is_sqlalchemy_s_and_a_dropped_connection_is_invalidated(world):
    """The short path runs its statements on the driver's cursor: errors still reach the
    fronts as SQLAlchemy's (their 503 handlers, ``AlreadyHeld``), and a connection the
    server dropped is invalidated so the pool never hands it out again."""
    from sqlalchemy.exc import DataError, OperationalError

    from rems_service.db.decision_sql import _one

    runtime = world.runtime
    with runtime.session() as session:
        with pytest.raises(DataError):
            _one(session, text("SELECT 1 / 0 AS x"), {})
    with runtime.session() as session:
        pid = _one(session, text("SELECT pg_backend_pid() AS pid"), {}).pid
        with runtime.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError) as raised:
            _one(session, text("SELECT 1 AS x"), {})
        assert raised.value.connection_invalidated
        assert session.connection().invalidated


def test_the_token_read_equals_the_orm_read(world):
    """Every request's first statement runs on the driver's cursor on PostgreSQL: the same
    actor as the ORM path's, and none for an unknown token or one expired by ``now``."""
    from datetime import UTC, datetime

    from rems_service.services.users import hash_token

    now = datetime.now(UTC)
    with world.runtime.uow() as uow:
        for token in (world.pharmacist_token, world.prescriber_token, world.admin, "rems_unknown"):
            short = uow.repo.actor_by_token_hash(hash_token(token), now)
            orm = _orm(Repository(uow.session)).actor_by_token_hash(hash_token(token), now)
            assert short == orm
            assert (short is None) == (token == "rems_unknown")
        uow.session.execute(text("UPDATE users SET token_expires_at = :t"), {"t": now})
        assert uow.repo.actor_by_token_hash(hash_token(world.admin), now) is None
        assert _orm(Repository(uow.session)).actor_by_token_hash(hash_token(world.admin), now) is None
