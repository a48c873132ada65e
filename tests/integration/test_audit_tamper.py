"""Issue 5, must show 1–3: mutations of a 10,000-entry chain are detected at the
right sequence number; the database refuses UPDATE, DELETE and TRUNCATE; 8
concurrent writers on PostgreSQL leave one valid chain.

Each mutation runs inside a transaction in which the test has switched the
append-only triggers off, as a superuser could, and is rolled back after the
check, so one chain serves every mutation.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from rems_service.db import audit_chain as audit
from rems_service.db.audit_log_store import AuditLogStore
from rems_service.db.engine import build_engine
from rems_service.db.models import AuditChainHead, AuditEntry
from rems_service.services import audit_log
from tests.helpers import tamper_with_audit
from workflows.actors import SYSTEM, Actor
from workflows.audit import GENESIS_HASH, chain_hash

CHAIN = 10_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build_chain(engine, n: int = CHAIN) -> list[AuditEntry]:
    """Write ``n`` chained entries in bulk (hashes computed exactly as the append path does)."""
    entries, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        entry = AuditEntry(
            seq=seq,
            recorded_at=T0 + timedelta(seconds=seq),
            effective_at=T0 + timedelta(seconds=seq),
            actor_user_id=None,
            actor_role="system",
            action="test.entry",
            outcome="completed",
            reasons=[{"code": "EARLY_REFILL", "rule": "R-DISP-3", "message": "m"}] if seq % 7 == 0 else [],
            program_version="2020.1",
            subject={"n": seq},
            prescriber_id=None,
            pharmacy_id=None,
            rems_patient_id=f"RP-{seq:05d}-TEST0",
            inputs_digest="0" * 64,
            details={"i": seq},
            prev_hash=prev,
            hash="",
        )
        entry.hash = chain_hash(prev, audit.entry_content(entry))
        prev = entry.hash
        entries.append(entry)
    with Session(engine, expire_on_commit=False) as session:
        session.add_all(entries)
        head = session.get(AuditChainHead, audit.CHAIN_HEAD_ID)
        head.seq, head.hash = n, prev
        session.commit()
    return entries


@pytest.fixture
def chained(database_url):
    engine = build_engine(database_url)
    entries = build_chain(engine)
    yield engine, entries
    engine.dispose()


def _check(session: Session):
    return audit.verify_chain(session)


def _update(session, seq, **values):
    sets = ", ".join(f"{k} = :{k}" for k in values)
    session.execute(text(f"UPDATE audit_entries SET {sets} WHERE seq = :seq"), {"seq": seq, **values})


def _mutations(entries):
    mid = CHAIN // 2
    forged = entries[mid - 1]

    def edit(session):
        _update(session, 4321, outcome="approved")
        return 4321

    def edit_json(session):
        _update(session, 777, details='{"i": 778}')
        return 777

    def delete(session):
        session.execute(text("DELETE FROM audit_entries WHERE seq = 6000"))
        return 6000

    def swap(session):
        # Swap the contents of 3000 and 3001 (keeping their seq numbers).
        a, b = (session.get(AuditEntry, s) for s in (3000, 3001))
        cols = ("subject", "details", "prev_hash", "hash", "recorded_at", "effective_at")
        va = {c: getattr(a, c) for c in cols}
        vb = {c: getattr(b, c) for c in cols}
        session.expunge_all()
        table = AuditEntry.__table__
        session.execute(table.update().where(table.c.seq == 3000).values(hash="swap-in-progress"))  # hash is unique
        for seq, values in ((3001, va), (3000, vb)):
            for c, v in values.items():
                session.execute(AuditEntry.__table__.update().where(AuditEntry.__table__.c.seq == seq).values({c: v}))
        return 3000

    def insert_forged(session):
        # Make room at the end of the chain's first half and insert a well-formed forged entry there.
        session.execute(text("DELETE FROM audit_entries WHERE seq = :s"), {"s": mid})
        fake = AuditEntry(**{**forged.model_dump(), "outcome": "approved", "details": {"forged": True}})
        fake.hash = chain_hash(fake.prev_hash, audit.entry_content(fake))
        session.add(fake)
        session.flush()
        return mid + 1  # the forged entry hashes correctly; its successor no longer links to it

    def truncate_tail_and_forge_head(session):
        session.execute(text("DELETE FROM audit_entries WHERE seq > 9000"))
        session.execute(text("UPDATE audit_chain_head SET seq = 9000, hash = :h"), {"h": entries[8999].hash})
        return None  # consistent by itself: only the anchor can tell (see below)

    return {
        "edit a field": edit,
        "edit a JSON field": edit_json,
        "delete a row": delete,
        "swap two rows": swap,
        "insert a forged row": insert_forged,
        "truncate the tail": truncate_tail_and_forge_head,
    }


MUTATIONS = [
    "edit a field",
    "edit a JSON field",
    "delete a row",
    "swap two rows",
    "insert a forged row",
    "truncate the tail",
]


def test_each_mutation_of_a_10000_entry_chain_is_detected(chained):
    engine, entries = chained
    with Session(engine) as session:
        check = _check(session)
        assert check.valid and check.checked == CHAIN
    anchor = (CHAIN, entries[-1].hash)
    for name in MUTATIONS:
        with Session(engine) as session:
            tamper_with_audit(session)
            expected = _mutations(entries)[name](session)
            session.flush()
            check = _check(session)
            if expected is None:
                # A truncated tail with a rewritten head row verifies by itself; the
                # anchor taken before the truncation does not.
                assert check.valid and check.head_seq == 9000, name
                bad, report = audit_log._against_anchor(AuditLogStore(session), check, *anchor)
                assert not bad.valid and bad.first_invalid_seq == 9001 and report["matches"] is False, name
            else:
                assert not check.valid and check.first_invalid_seq == expected, (name, check)
            session.rollback()
        with Session(engine) as session:
            assert _check(session).valid, f"the rollback after {name!r} restored the chain"


def test_a_removed_tail_is_detected_even_without_an_anchor(chained):
    engine, entries = chained
    with Session(engine) as session:
        tamper_with_audit(session)
        session.execute(text("DELETE FROM audit_entries WHERE seq > 9990"))
        check = _check(session)
        assert not check.valid and check.first_invalid_seq == 9991
        session.rollback()


def test_the_database_refuses_update_delete_and_truncate(database_url):
    engine = build_engine(database_url)
    try:
        build_chain(engine, 3)
        statements = [
            "UPDATE audit_entries SET outcome = 'approved' WHERE seq = 2",
            "DELETE FROM audit_entries WHERE seq = 3",
        ]
        if engine.dialect.name == "postgresql":
            statements.append("TRUNCATE audit_entries CASCADE")
        for statement in statements:
            with engine.connect() as conn, pytest.raises(DBAPIError) as info:
                conn.execute(text(statement))
            assert "append-only" in str(info.value)
        with Session(engine) as session:
            assert audit.verify_chain(session).valid and audit.verify_chain(session).checked == 3
    finally:
        engine.dispose()


def test_the_trigger_binds_the_table_owner_too(postgres_url):
    """The service's role owns the table here; ownership does not lift the refusal."""
    engine = build_engine(postgres_url)
    try:
        build_chain(engine, 2)
        role = f"rems_owner_probe_{uuid.uuid4().hex[:8]}"
        with engine.connect() as conn:
            conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
            conn.commit()
            try:
                conn.execute(text(f"ALTER TABLE audit_entries OWNER TO {role}"))
                conn.execute(text(f"SET ROLE {role}"))
                with pytest.raises(DBAPIError) as info:
                    conn.execute(text("DELETE FROM audit_entries"))
                assert "append-only" in str(info.value)
            finally:
                conn.rollback()  # ownership and role back to the superuser
                conn.execute(text(f"DROP ROLE {role}"))
                conn.commit()
    finally:
        engine.dispose()


def test_eight_concurrent_writers_of_200_entries_leave_one_chain(postgres_url):
    engine = build_engine(postgres_url, pool_size=8, max_overflow=0)
    with Session(engine) as session:
        before = session.get(AuditChainHead, audit.CHAIN_HEAD_ID).seq
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(200):
                with Session(engine) as session:
                    audit.append(
                        session,
                        actor=SYSTEM,
                        action="test.append",
                        outcome="completed",
                        effective_at=datetime.now(UTC),
                        subject={"writer": n, "i": i},
                    )
                    session.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with Session(engine) as session:
            check = audit.verify_chain(session)
            rows = session.exec(select(AuditEntry.subject).where(AuditEntry.seq > before)).all()
            recorded = session.exec(select(AuditEntry.recorded_at).order_by(AuditEntry.seq)).all()
        assert check.valid and check.head_seq == before + 1600 and len(rows) == 1600
        assert len({(r["writer"], r["i"]) for r in rows}) == 1600
        assert recorded == sorted(recorded)  # database time is monotonic along the chain
    finally:
        engine.dispose()


def test_postgresql_builds_each_entrys_canonical_text_as_python_does(postgres_url):
    """Verification on PostgreSQL hashes the text the database assembles from the columns;
    for entries with awkward strings, nulls and nested JSON it is exactly the canonical JSON."""
    engine = build_engine(postgres_url)
    awkward = 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f é 中文 \u2028 emoji 💊 </script>'
    try:
        with Session(engine) as session:
            for i, role in enumerate(("system", "pharmacist", awkward[:20])):
                audit.append(  # awkward text in string columns (actor role, action) and in JSON columns
                    session,
                    actor=Actor(uuid.uuid4() if i else None, role),
                    action=f"test.{i} {awkward[:50]}",
                    outcome="completed",
                    effective_at=T0 + timedelta(microseconds=i),
                    subject={
                        "rems_patient_id": f"RP-{i}",
                        "pharmacy_id": str(uuid.uuid4()) if i else None,
                        "note": awkward,
                    },
                    reasons=[{"code": "X", "message": awkward, "n": [1, 2.5, True, None, {"z": 1, "a": [{}]}]}],
                    program_version=None if i == 1 else "2020.1",
                    inputs={"any": awkward},
                    details={
                        "nested": {"b": awkward, "a": -0.0, "big": 10**20, "small": 1e-7},
                        "empty": {},
                        "list": [],
                    },
                )
            session.commit()
        with Session(engine) as session:
            presumed = list(audit._presumed_canonical(session, 0))
            rows = list(audit.iter_rows(session))
            assert len(presumed) == len(rows) == 3
            for (seq, _, _, p, _mac), row in zip(presumed, rows):
                assert seq == row.seq and p.text == audit.canonical_json(audit.entry_content(row))
            assert audit.verify_chain(session).valid
    finally:
        engine.dispose()


def test_json_rewritten_with_other_whitespace_still_verifies_and_a_changed_value_does_not(postgres_url):
    """The stored text is only a shortcut: an entry whose JSON text is not canonical is
    checked the defining way (same content → valid); a changed value is caught."""
    engine = build_engine(postgres_url)
    try:
        build_chain(engine, 20)
        with Session(engine) as session:
            tamper_with_audit(session)
            _update(session, 7, details='{ "i" : 7 }')
            assert audit.verify_chain(session).valid
            _update(session, 9, details='{ "i" : 10 }')
            check = audit.verify_chain(session)
            assert not check.valid and check.first_invalid_seq == 9
            session.rollback()
    finally:
        engine.dispose()


def test_an_append_committed_while_the_chain_is_read_is_not_a_false_alarm(postgres_url, monkeypatch):
    """Verification reads entries and the head row in one snapshot: an entry appended
    (with its head update) after the entries were read but before the head row is
    read must not make the head look forged."""
    from rems_service.db.uow import UnitOfWork

    engine = build_engine(postgres_url)
    reader = audit._presumed_canonical

    def append_when_done(session, after_seq, *args, **kwargs):
        yield from reader(session, after_seq, *args, **kwargs)
        with Session(engine) as other:
            audit.append(other, actor=SYSTEM, action="test.late", outcome="completed", effective_at=T0, subject={})
            other.commit()

    try:
        build_chain(engine, 50)
        monkeypatch.setattr(audit, "_presumed_canonical", append_when_done)
        result = audit_log.verify(UnitOfWork(lambda: Session(engine, expire_on_commit=False)), None, T0)
        assert result.check.valid and result.check.head_seq == 50, result.check
        monkeypatch.undo()
        with Session(engine) as session:
            assert audit.verify_chain(session).valid and audit.verify_chain(session).head_seq == 51
    finally:
        engine.dispose()


def test_read_ahead_hands_on_errors_and_stops_its_thread_when_closed():
    def failing():
        yield [1, 2]
        raise RuntimeError("connection lost")

    items = audit._read_ahead(failing())
    assert [next(items), next(items)] == [1, 2]
    with pytest.raises(RuntimeError, match="connection lost"):
        next(items)

    produced = []

    def endless():
        n = 0
        while True:
            n += 1
            produced.append(n)
            yield [n]

    items = audit._read_ahead(endless(), depth=2)
    assert next(items) == 1
    items.close()  # the consumer stops early (an invalid entry): the producer ends too
    assert not any(t.name == "audit-read-ahead" and t.is_alive() for t in threading.enumerate())
    assert len(produced) <= 4, "the producer stayed at most depth batches ahead"


def test_a_chain_written_before_json_was_stored_canonical_still_verifies(postgres_url):
    """Entries whose JSON columns hold another (equivalent) text — as written before the
    engine stored JSON canonical — take the defining path, in runs; one changed value
    among them is still caught at its sequence number."""
    import json

    old_engine = build_engine(postgres_url, json_serializer=json.dumps)  # "key": value, with spaces
    engine = build_engine(postgres_url)
    try:
        build_chain(old_engine, 4_500)
        with Session(engine) as session:
            check = audit.verify_chain(session)
            assert check.valid and check.checked == 4_500
            tamper_with_audit(session)
            _update(session, 4_321, details='{"i": 4322}')
            check = audit.verify_chain(session)
            assert not check.valid and check.first_invalid_seq == 4_321
            session.rollback()
    finally:
        old_engine.dispose()
        engine.dispose()
