"""Issue 18, item 8: every audit entry carries a keyed MAC made with a key the database
never holds, so an entry written by anyone without the key (a database administrator
appending or rewriting with recomputed hashes) fails verification even without an anchor;
entries written before MACs existed are reported as unsigned, never silently passed."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from rems_service.db import audit_chain as audit
from rems_service.db import audit_mac
from rems_service.db.engine import build_engine
from rems_service.db.models import AuditChainHead, AuditEntry
from tests.helpers import tamper_with_audit
from tests.integration.test_audit_tamper import build_chain
from workflows.actors import SYSTEM
from workflows.audit import chain_hash

T0 = datetime(2026, 3, 1, tzinfo=UTC)
OTHER_KEY = audit_mac.AuditKey(bytes.fromhex("0b" * 32))


def _append(session: Session, n: int) -> list[AuditEntry]:
    entries = [
        audit.append(
            session, actor=SYSTEM, action="test.signed", outcome="completed", effective_at=T0, subject={"i": i}
        )
        for i in range(n)
    ]
    session.commit()
    return entries


def _forge_append(session: Session, mac: str | None) -> int:
    """What a database administrator can do without the key: append a well-formed entry
    (right seq, prev_hash and hash, head row moved) with a MAC of their choosing."""
    head = session.get(AuditChainHead, audit.CHAIN_HEAD_ID)
    entry = AuditEntry(
        seq=head.seq + 1,
        recorded_at=T0,
        effective_at=T0,
        actor_role="pharmacist",
        action="dispense.approved",
        outcome="approved",
        subject={"forged": True},
        inputs_digest="0" * 64,
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = chain_hash(head.hash, audit.entry_content(entry))
    entry.mac = mac
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.flush()
    return entry.seq


@pytest.fixture
def engine(database_url):
    engine = build_engine(database_url)
    yield engine
    engine.dispose()


def test_each_appended_entry_carries_a_mac_of_its_hash_under_the_audit_key(engine):
    key = audit_mac.current_key()
    assert key.secret == bytes.fromhex(os.environ["REMS_AUDIT_KEY"])  # the tests' fixed key
    with Session(engine) as session:
        entries = _append(session, 3)
    with Session(engine) as session:
        stored = [session.get(AuditEntry, e.seq) for e in entries]
        assert all(row.mac and key.entry_mac_matches(row.hash, row.mac) for row in stored)
        assert not OTHER_KEY.entry_mac_matches(stored[0].hash, stored[0].mac)
        check = audit.verify_chain(session)
        assert check.valid and check.unsigned == 0 and check.unsigned_through_seq is None
        # Verified with another key, the very same chain fails at its first entry.
        other = audit.verify_chain(session, key=OTHER_KEY)
        assert not other.valid and other.first_invalid_seq == entries[0].seq and other.reason == "mac"


@pytest.mark.parametrize("mac", ["no MAC", "another key's MAC", "a copied MAC"])
def test_a_forged_append_is_caught_by_the_key_check_without_any_anchor(engine, mac):
    with Session(engine) as session:
        entries = _append(session, 4)
    with Session(engine) as session:
        tamper_with_audit(session)  # as the owner or a superuser could
        forged_mac = {
            "no MAC": None,
            "another key's MAC": OTHER_KEY.entry_mac("f" * 64),
            "a copied MAC": entries[-1].mac,
        }[mac]
        seq = _forge_append(session, forged_mac)
        check = audit.verify_chain(session)
        # The hash chain and the head row agree with the forged entry; only the key tells.
        assert not check.valid and check.first_invalid_seq == seq == 5 and check.reason == "mac", check
        session.rollback()


def test_a_full_rewrite_with_recomputed_hashes_keeping_the_macs_fails_the_key_check(engine):
    with Session(engine) as session:
        entries = _append(session, 5)
    with Session(engine) as session:
        tamper_with_audit(session)
        rows = [AuditEntry(**session.get(AuditEntry, e.seq).model_dump()) for e in entries]
        session.expunge_all()
        session.execute(text("DELETE FROM audit_entries"))
        prev = audit.GENESIS_HASH
        for row in rows:  # every hash recomputed, each entry keeping the MAC it had
            if row.seq == 2:
                row.outcome = "approved"
            row.prev_hash = prev
            row.hash = chain_hash(prev, audit.entry_content(row))
            prev = row.hash
            session.add(row)
            session.flush()
        head = session.get(AuditChainHead, audit.CHAIN_HEAD_ID)
        head.seq, head.hash = rows[-1].seq, prev
        session.flush()
        check = audit.verify_chain(session)
        assert not check.valid and check.first_invalid_seq == 2 and check.reason == "mac", check
        session.rollback()


def test_entries_written_before_macs_are_reported_unsigned_and_only_as_a_prefix(engine):
    """The history written before the upgrade (no MAC column then) verifies by its hashes and
    is counted as unsigned; an unsigned entry after a signed one is a forgery."""
    build_chain(engine, 6)  # as the old version wrote them: no MAC
    with Session(engine) as session:
        check = audit.verify_chain(session)
        assert check.valid and check.unsigned == 6 and check.unsigned_through_seq == 6
        _append(session, 2)
    with Session(engine) as session:
        check = audit.verify_chain(session)
        assert check.valid and check.checked == 8 and check.unsigned == 6 and check.unsigned_through_seq == 6
        # Incremental from a signed entry: an unsigned one after it is refused.
        tamper_with_audit(session)
        seq = _forge_append(session, None)
        assert seq == 9
        for after in (0, 7):
            prev = audit.GENESIS_HASH if after == 0 else session.get(AuditEntry, after).hash
            check = audit.verify_chain(session, after, prev)
            assert not check.valid and check.first_invalid_seq == 9 and check.reason == "mac", (after, check)
        session.rollback()


def test_the_embedded_default_generates_a_key_file_once_and_production_must_name_one(tmp_path):
    settings = {"ENV_NAME": "development"}
    first = audit_mac.load_key(settings, str(tmp_path))
    path = tmp_path / audit_mac.DEFAULT_KEY_FILE
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit_mac.load_key(settings, str(tmp_path)) == first  # read back, not regenerated
    assert len(first.secret) == 32 and first.key_id != OTHER_KEY.key_id
    with pytest.raises(audit_mac.AuditKeyError, match="REMS_AUDIT_KEY"):
        audit_mac.load_key({"ENV_NAME": "production"}, str(tmp_path / "prod"))
    assert not (tmp_path / "prod").exists()
    key_file = tmp_path / "audit.key"
    key_file.write_text("ab" * 32 + "\n")
    assert audit_mac.load_key({"ENV_NAME": "production", "AUDIT_KEY_FILE": str(key_file)}, None).secret == b"\xab" * 32
    assert audit_mac.load_key({"AUDIT_KEY": "cd" * 40}, None).secret == b"\xcd" * 40
    for bad in ("not hex", "ab" * 16):
        with pytest.raises(audit_mac.AuditKeyError, match="REMS_AUDIT_KEY"):
            audit_mac.load_key({"AUDIT_KEY": bad}, None)
    with pytest.raises(audit_mac.AuditKeyError, match="REMS_AUDIT_KEY_FILE"):
        audit_mac.load_key({"AUDIT_KEY_FILE": str(tmp_path / "missing")}, None)


def test_incremental_verification_starts_only_from_a_checkpoint_the_service_signed(engine):
    """Checkpoints live in the database too: one written by anyone without the key (to skip
    rewritten entries) is not trusted, and the verification runs in full."""
    from rems_service.db.models import AuditCheckpoint
    from rems_service.db.uow import UnitOfWork
    from rems_service.services import audit_log

    def verify():
        return audit_log.verify(UnitOfWork(lambda: Session(engine, expire_on_commit=False)), None, T0, incremental=True)

    with Session(engine) as session:
        entries = _append(session, 6)
    first = verify()
    assert first.check.valid and first.mode == "full"
    with Session(engine) as session:
        (point,) = session.exec(select(AuditCheckpoint)).all()
        assert audit_mac.current_key().checkpoint_mac_matches(6, entries[-1].hash, point.mac)
    with Session(engine) as session:
        _append(session, 2)
    second = verify()
    assert (second.mode, second.started_after_seq, second.check.valid) == ("incremental", 6, True)  # signed: used
    with Session(engine) as session:  # a database administrator rewrites 3..8 and checkpoints the result
        tamper_with_audit(session)
        rows = [AuditEntry(**session.get(AuditEntry, s).model_dump()) for s in range(1, 9)]
        session.expunge_all()
        session.execute(text("DELETE FROM audit_entries WHERE seq >= 3"))
        prev = rows[1].hash
        for row in rows[2:]:
            if row.seq == 3:
                row.outcome = "approved"
            row.prev_hash = prev
            row.hash = prev = chain_hash(prev, audit.entry_content(row))
            session.add(row)
            session.flush()
        head = session.get(AuditChainHead, audit.CHAIN_HEAD_ID)
        head.seq, head.hash = 8, prev
        session.add(AuditCheckpoint(seq=8, hash=prev, verified_at=T0, mac=OTHER_KEY.checkpoint_mac(8, prev)))
        session.commit()
    result = verify()
    assert result.mode == "full" and not result.check.valid
    assert (result.check.first_invalid_seq, result.check.reason) == (3, "mac")
