"""Issue 18, item 8 and must show 2: on PostgreSQL the migrations run as an owner role and
the service as a role that may only read and add audit entries, so the service's own
database user cannot switch the append-only triggers off or rewrite the log; and what the
owner (a database administrator) can still do to the log — edit, delete from the middle,
swap, delete the tail and move the head, truncate and reset the head, rewrite everything
with recomputed hashes, append a forged entry — is caught by `rems audit verify --anchors`
once an anchor was published after the entries concerned (the forged append by the key
check alone, without one).

The roles are cluster-wide: their names carry this session's own database name, so test
sessions and xdist workers running at once never share one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from rems_service import create_app
from rems_service.cli import main
from rems_service.db import audit_chain as audit
from rems_service.db import audit_mac
from rems_service.db.engine import build_engine
from rems_service.db.models import AuditEntry
from rems_service.db.uow import UnitOfWork
from rems_service.services import audit_log
from tests.conftest import reset_postgres
from tests.helpers import (
    NOW,
    TRAINED,
    Api,
    authorize,
    dispense,
    make_pharmacy,
    make_prescriber,
    make_user,
    ready_patient,
)
from workflows.actors import SYSTEM
from workflows.audit import GENESIS_HASH, chain_hash

pytestmark = pytest.mark.postgres_only

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def roles(pg_database):
    """A database of its own owned by a fresh owner role, migrated by `rems db upgrade`
    with ``REMS_DATABASE_OWNER_URL`` = the owner and ``DATABASE_URL`` = a fresh service role."""
    base = make_url(pg_database)
    name = f"{base.database}_roles"
    owner, service = f"{name}_owner", f"{name}_service"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{owner}" LOGIN'))
        conn.execute(text(f'CREATE ROLE "{service}" LOGIN'))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
    urls = SimpleNamespace(
        superuser=base.set(database=name).render_as_string(hide_password=False),
        owner=base.set(database=name, username=owner).render_as_string(hide_password=False),
        service=base.set(database=name, username=service).render_as_string(hide_password=False),
        owner_role=owner,
        service_role=service,
    )
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DATABASE_URL", urls.service)
            mp.setenv("REMS_DATABASE_OWNER_URL", urls.owner)
            result = CliRunner().invoke(main, ["db", "upgrade"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        urls.upgraded = json.loads(result.stdout)
        yield urls
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{service}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{owner}"'))
        admin.dispose()


@pytest.fixture
def db(roles):
    """Engines as the service and as the owner, on an emptied log."""
    reset_postgres(roles.superuser)
    service, owner = build_engine(roles.service), build_engine(roles.owner)
    yield SimpleNamespace(roles=roles, service=service, owner=owner)
    service.dispose()
    owner.dispose()


def _append(engine, n: int) -> None:
    with Session(engine) as session:
        for i in range(n):
            audit.append(
                session,
                actor=SYSTEM,
                action="test.entry",
                outcome="completed",
                effective_at=T0 + timedelta(minutes=i),
                subject={"i": i},
            )
        session.commit()


def _publish(engine, sink) -> dict:
    uow = lambda: UnitOfWork(lambda: Session(engine, expire_on_commit=False))  # noqa: E731
    published = audit_log.publish_anchor(uow, audit_mac.current_key(), sink, datetime.now(UTC))
    assert published["published"] is True, published
    return published


def _cli(monkeypatch, url: str, *args: str) -> tuple[int, dict]:
    monkeypatch.setenv("DATABASE_URL", url)
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_db_upgrade_makes_the_owner_own_the_tables_and_grants_the_service_only_select_and_insert(db):
    roles = db.roles
    assert roles.upgraded["roles"] == {
        "owner": roles.owner_role,
        "service_role": roles.service_role,
        "separated": True,
        "ownership_taken": [],
        "audit_entries": ["SELECT", "INSERT"],
    }
    with db.owner.connect() as conn:
        owners = set(conn.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")).scalars())
        assert owners == {roles.owner_role}
        granted = set(
            conn.execute(
                text(
                    "SELECT privilege_type FROM information_schema.role_table_grants "
                    "WHERE table_name = 'audit_entries' AND grantee = :r"
                ),
                {"r": roles.service_role},
            ).scalars()
        )
        assert granted == {"SELECT", "INSERT"}


STATEMENTS_REFUSED_TO_THE_SERVICE = [
    "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
    "ALTER TABLE audit_entries DISABLE TRIGGER USER",
    "ALTER TABLE audit_entries DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_entries_append_only ON audit_entries",
    "DROP TRIGGER audit_entries_no_truncate ON audit_entries",
    "UPDATE audit_entries SET outcome = 'approved' WHERE seq = 2",
    "DELETE FROM audit_entries WHERE seq = 3",
    "DELETE FROM audit_entries",
    "TRUNCATE audit_entries",
    "TRUNCATE audit_entries CASCADE",
    "ALTER TABLE audit_entries OWNER TO CURRENT_USER",
    "ALTER TABLE audit_entries ADD COLUMN note text",
    "CREATE TRIGGER sneak BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION rems_audit_append_only()",
    "CREATE OR REPLACE FUNCTION rems_audit_append_only() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RETURN NEW; END $$",
    "DROP TABLE audit_entries CASCADE",
    "SET session_replication_role = replica",
    "DELETE FROM audit_reason_codes",
    "UPDATE audit_checkpoints SET hash = 'x'",
]


def test_the_service_role_cannot_switch_off_the_triggers_or_rewrite_the_log(db):
    _append(db.service, 4)  # the service's role may add entries ...
    for statement in STATEMENTS_REFUSED_TO_THE_SERVICE:
        with db.service.connect() as conn, pytest.raises(DBAPIError, match=".") as info:
            conn.execute(text(statement))
            pytest.fail(f"the service role may: {statement}")
        # ... and is refused by privilege (not by a trigger it could have switched off).
        assert info.value.orig.sqlstate == "42501", (statement, info.value.orig)
        assert "append-only" not in str(info.value.orig), statement
    with db.service.connect() as conn:
        # A GRANT by a non-owner grants nothing (PostgreSQL warns instead of failing).
        conn.execute(text("GRANT UPDATE, DELETE, TRUNCATE, TRIGGER ON audit_entries TO CURRENT_USER"))
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"):
            allowed = conn.execute(text(f"SELECT has_table_privilege('audit_entries', '{privilege}')")).scalar()
            assert allowed is (privilege in ("SELECT", "INSERT")), privilege
    with Session(db.service) as session:
        check = audit.verify_chain(session)
        assert check.valid and check.checked == 4 and check.unsigned == 0


def test_the_service_role_makes_decisions_and_runs_its_commands(db, monkeypatch, tmp_path):
    """Everything the service does still works under its narrower role: registrations,
    enrolment, an authorization and a dispense through the API, checkpoints, anchors, sweeps."""
    app = create_app({"DATABASE_URL": db.roles.service})
    runtime = app.extensions["rems"]
    try:
        prescriber = make_prescriber(runtime, "1234567893")
        pharmacy = make_pharmacy(runtime, "1234567")
        world = SimpleNamespace(
            api=Api(app.test_client()),
            prescriber_token=make_user(runtime, "prescriber", prescriber_id=prescriber.id)[1],
            pharmacist_token=make_user(runtime, "pharmacist", pharmacy_id=pharmacy.id, training_completed_at=TRAINED)[
                1
            ],
        )
        patient = ready_patient(world)
        r = authorize(world, patient)
        assert r.status_code == 201, r.json
        r = dispense(world, r.json["authorization_number"], patient["rems_patient_id"], token=world.pharmacist_token)
        assert r.status_code in (200, 201), r.json
    finally:
        runtime.engine.dispose()
    anchors = str(tmp_path / "anchors")
    assert _cli(monkeypatch, db.roles.service, "audit", "anchor", "--publish", "--dir", anchors)[1]["published"]
    code, report = _cli(monkeypatch, db.roles.service, "audit", "verify", "--anchors", anchors)
    assert code == 0 and report["valid"] and report["anchors"]["matched"] == 1 and report["unsigned"]["count"] == 0
    assert _cli(monkeypatch, db.roles.service, "jobs", "sweep")[0] == 0
    assert NOW  # the scenario's clock


# --- What the owner can still do, and how it is caught -----------------------------------


def _owner_tampers(engine, change) -> None:
    """As the table's owner: the append-only triggers off, ``change``, triggers on, committed."""
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        change(conn)
        conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))


def _rows(conn) -> list[AuditEntry]:
    result = conn.execute(text("SELECT * FROM audit_entries ORDER BY seq"))
    return [AuditEntry(**row._mapping) for row in result]


def _move_head(conn, seq: int, digest: str) -> None:
    conn.execute(text("UPDATE audit_chain_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq, "h": digest})


def _insert(conn, entry: AuditEntry) -> None:
    conn.execute(AuditEntry.__table__.insert().values(**entry.model_dump()))


def edit(conn):
    conn.execute(text("UPDATE audit_entries SET outcome = 'approved' WHERE seq = 5"))


def middle_delete(conn):
    conn.execute(text("DELETE FROM audit_entries WHERE seq = 6"))


def swap(conn):
    a, b = (r for r in _rows(conn) if r.seq in (4, 5))
    conn.execute(text("DELETE FROM audit_entries WHERE seq IN (4, 5)"))
    _insert(conn, AuditEntry(**{**b.model_dump(), "seq": 4}))
    _insert(conn, AuditEntry(**{**a.model_dump(), "seq": 5}))


def tail_delete_with_head_moved(conn):
    kept = [r for r in _rows(conn) if r.seq < 10]
    conn.execute(text("DELETE FROM audit_entries WHERE seq >= 10"))
    _move_head(conn, kept[-1].seq, kept[-1].hash)


def truncate_with_head_reset(conn):
    conn.execute(text("TRUNCATE audit_entries CASCADE"))
    _move_head(conn, 0, GENESIS_HASH)


def full_rewrite_with_recomputed_hashes(conn):
    """From entry 7 on, rewritten and rehashed; without the key no MAC can be made, so every
    MAC is dropped (the whole log then looks like history from before MACs existed)."""
    rows = _rows(conn)
    conn.execute(text("DELETE FROM audit_entries"))
    prev = GENESIS_HASH
    for row in rows:
        if row.seq == 7:
            row.outcome, row.details = "approved", {"forged": True}
        row.prev_hash, row.mac = prev, None
        row.hash = prev = chain_hash(prev, audit.entry_content(row))
        _insert(conn, row)
    _move_head(conn, rows[-1].seq, prev)


def forged_append(conn):
    head_seq, head_hash = conn.execute(text("SELECT seq, hash FROM audit_chain_head")).one()
    entry = AuditEntry(
        seq=head_seq + 1,
        recorded_at=T0,
        effective_at=T0,
        actor_role="pharmacist",
        action="dispense.approved",
        outcome="approved",
        subject={"forged": True},
        inputs_digest="0" * 64,
        prev_hash=head_hash,
        hash="",
        mac=audit_mac.AuditKey(b"\x01" * 32).entry_mac("guess"),
    )
    entry.hash = chain_hash(head_hash, audit.entry_content(entry))
    _insert(conn, entry)
    _move_head(conn, entry.seq, entry.hash)


#: Anchors are published at seq 6 and 12; entries 13–15 follow. (mutation, first invalid seq, reason)
OWNER_TAMPERING = [
    (edit, 5, "hash"),
    (middle_delete, 6, "sequence"),
    (swap, 4, "link"),
    (tail_delete_with_head_moved, 10, "anchor"),
    (truncate_with_head_reset, 1, "anchor"),
    (full_rewrite_with_recomputed_hashes, 7, "anchor"),
    (forged_append, 16, "mac"),
]


@pytest.mark.parametrize(
    ("change", "first_invalid", "reason"), OWNER_TAMPERING, ids=lambda v: getattr(v, "__name__", v)
)
def test_owner_tampering_is_caught_by_verify_with_anchors(db, monkeypatch, tmp_path, change, first_invalid, reason):
    sink = audit_log.AnchorSink(tmp_path / "anchors")
    _append(db.service, 6)
    _publish(db.service, sink)
    _append(db.service, 6)
    _publish(db.service, sink)
    _append(db.service, 3)
    url, anchors = db.roles.service, str(sink.directory)
    code, before = _cli(monkeypatch, url, "audit", "verify", "--anchors", anchors)
    assert code == 0 and before["valid"] and before["head_seq"] == 15 and before["anchors"]["matched"] == 2

    _owner_tampers(db.owner, change)

    code, after = _cli(monkeypatch, url, "audit", "verify", "--anchors", anchors)
    assert code == 1 and after["valid"] is False, after
    assert (after["first_invalid_seq"], after["invalid_reason"]) == (first_invalid, reason), after
    code, alone = _cli(monkeypatch, url, "audit", "verify")
    if reason == "anchor":
        # Consistent by itself: only an anchor published outside the database tells.
        assert code == 0 and alone["valid"], alone
    else:
        assert code == 1 and (alone["first_invalid_seq"], alone["invalid_reason"]) == (first_invalid, reason)
    if change is edit:  # the stored hashes are untouched: every anchor still matches, and says so
        assert after["anchors"]["matched"] == 2 and after["anchors"]["problem_count"] == 0
    if change is full_rewrite_with_recomputed_hashes:
        assert alone["unsigned"] == {"count": 15, "through_seq": 15, "anchored_by_seq": None}
        assert "written before MACs existed" in CliRunner().invoke(main, ["audit", "verify"]).stderr
        assert after["anchors"]["problems"][0]["seq"] == 12 and after["anchors"]["matched"] == 1


def test_a_forged_append_is_caught_by_the_key_check_without_any_anchor(db, monkeypatch):
    _append(db.service, 3)
    _owner_tampers(db.owner, forged_append)
    code, report = _cli(monkeypatch, db.roles.service, "audit", "verify")
    assert code == 1 and (report["first_invalid_seq"], report["invalid_reason"]) == (4, "mac"), report
