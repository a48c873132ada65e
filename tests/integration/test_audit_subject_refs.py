"""The audit log's reference index (migration 0006): back-filled from a log written before
it, without touching an entry, so the chain verifies and every hash is unchanged; appends
after it index their own references in the entry's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, Table, insert, text
from sqlalchemy.exc import DBAPIError

from rems_service.db import audit_chain as audit
from rems_service.db import migrate
from rems_service.db.audit_log_store import AuditFilter, AuditLogStore
from rems_service.db.engine import build_engine
from tests.helpers import make_user, utc
from workflows.actors import SYSTEM

#: Subjects and details as the service writes them (values canonical), and one with typed forms.
WRITES = [
    ({"rems_patient_id": "RP-AAAAA-BBBBB", "patient_id": "p1"}, {}),
    ({"pharmacy_id": None, "authorization_number": "RA-AAAAA-BBBBB-CCCCC"}, {"confirmation_number": "RC-11111-22222"}),
    (
        {"authorization_number": "RA-00000-11111-22222", "presented_rems_patient_id": "RP-AAAAA-BBBBB"},
        {"days_supply": 28},
    ),
    ({"authorization_rems_patient_id": "RP-CCCCC-DDDDD", "presented_rems_patient_id": "RP-AAAAA-BBBBB"}, {}),
    ({"authorization_number": " ra-ooooo-iiiii-lllll "}, {"authorization_number": "RA-00000-11111-11111"}),
    ({}, {"filters": {"rems_patient_id": "RP-AAAAA-BBBBB"}}),  # nested (a read's filters): not a reference
]


def _append(runtime, n: int) -> None:
    for k, (subject, details) in enumerate(WRITES[:n]):
        with runtime.uow() as uow:
            audit.append(
                uow.session,
                actor=SYSTEM,
                action="dispense.decided",
                outcome="denied",
                effective_at=utc(2026, 11, 1, k),
                subject=subject,
                details=details,
            )
            uow.commit()


def _refs(engine) -> set[tuple[str, str, int]]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(text("SELECT kind, value, seq FROM audit_subject_refs")).all()}


def _hashes(engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT seq, hash FROM audit_entries ORDER BY seq")).all()]


def _found(runtime, **filters) -> list[int]:
    with runtime.session() as session:
        return [e.seq for e in AuditLogStore(session).page(AuditFilter(**filters), None, 100)]


@pytest.fixture
def log_before_0006(make_app, database_url, monkeypatch):
    """A log whose first entries were written at revision 0005 (no reference index then)."""
    app = make_app()
    runtime = app.extensions["rems"]
    make_user(runtime, "auditor")
    engine = build_engine(database_url)
    try:
        migrate.downgrade(engine, "0005")
        with monkeypatch.context() as m:  # the append path as it was: no references to index
            m.setattr(audit, "subject_refs", lambda subject, details: set())
            # ... and no MAC column (revision 0011 adds it): the entries stay unsigned.
            old_table = Table(
                "audit_entries", MetaData(), *(c._copy() for c in audit._ENTRY_TABLE.columns if c.name != "mac")
            )
            m.setattr(audit, "_ENTRY_TABLE", old_table)
            m.setattr(audit, "_INSERT_ENTRY", insert(old_table))
            _append(runtime, len(WRITES))
        yield runtime, engine
    finally:
        migrate.upgrade(engine)  # the session's database stays at head for the other tests
        engine.dispose()


def test_the_migration_indexes_an_older_log_and_the_chain_still_verifies(log_before_0006):
    runtime, engine = log_before_0006
    before = _hashes(engine)
    # (Verified after the upgrade only: today's verification reads the MAC column of 0011.)
    with engine.connect() as conn:
        head_seq, head_hash = conn.execute(text("SELECT seq, hash FROM audit_chain_head")).one()
    assert head_seq == len(WRITES) + 1  # the auditor's creation too
    migrate.upgrade(engine)
    assert _hashes(engine) == before
    with runtime.uow() as uow:
        check = audit.verify_chain(uow.session)
    assert (check.valid, check.head_seq, check.head_hash) == (True, head_seq, head_hash)
    assert check.unsigned == head_seq  # written before MACs existed
    first = before[0][0] + 1  # WRITES start after the user.created entry
    assert _refs(engine) == {
        ("rems_patient_id", "RP-AAAAA-BBBBB", first),
        ("authorization_number", "RA-AAAAA-BBBBB-CCCCC", first + 1),
        ("confirmation_number", "RC-11111-22222", first + 1),
        ("authorization_number", "RA-00000-11111-22222", first + 2),
        ("rems_patient_id", "RP-AAAAA-BBBBB", first + 2),
        ("rems_patient_id", "RP-CCCCC-DDDDD", first + 3),
        ("rems_patient_id", "RP-AAAAA-BBBBB", first + 3),
        ("authorization_number", "RA-00000-11111-11111", first + 4),
    }
    assert _found(runtime, rems_patient_id="RP-AAAAA-BBBBB") == [first + 3, first + 2, first]
    assert _found(runtime, rems_patient_id="RP-CCCCC-DDDDD") == [first + 3]
    assert _found(runtime, authorization_number="RA-00000-11111-11111") == [first + 4]
    # Appends after the migration index their own references, the same way the back-fill did.
    _append(runtime, 1)
    assert ("rems_patient_id", "RP-AAAAA-BBBBB", first + len(WRITES)) in _refs(engine)
    with runtime.uow() as uow:
        assert audit.verify_chain(uow.session).valid


def test_the_back_fill_matches_what_the_append_path_writes(make_app, database_url):
    runtime = make_app().extensions["rems"]
    _append(runtime, len(WRITES))
    engine = build_engine(database_url)
    try:
        written = _refs(engine)
        assert written
        migrate.downgrade(engine, "0005")
        migrate.upgrade(engine)
        assert _refs(engine) == written
    finally:
        migrate.upgrade(engine)
        engine.dispose()


def test_the_audit_table_is_still_append_only_after_the_migration(log_before_0006):
    runtime, engine = log_before_0006
    migrate.upgrade(engine)
    for statement in ("UPDATE audit_entries SET outcome = 'approved'", "DELETE FROM audit_entries"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(statement))
