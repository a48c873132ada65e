"""Issue 18, item 8: signed anchors of the audit chain (seq, head hash, time, signature)
published outside the database — a directory, plus an ``audit.anchored`` event — and
`rems audit verify --anchors DIR` checking the chain against every one of them."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import Session, select

from rems_service.cli import main
from rems_service.db import audit_chain as audit
from rems_service.db import audit_mac
from rems_service.db.engine import build_engine
from rems_service.db.models import OutboxEvent
from rems_service.db.uow import UnitOfWork
from rems_service.jobs import tasks
from rems_service.services import audit_log
from tests.helpers import tamper_with_audit
from tests.integration.test_audit_tamper import build_chain
from workflows.actors import SYSTEM

T0 = datetime(2026, 7, 1, 9, tzinfo=UTC)


@pytest.fixture
def engine(database_url):
    engine = build_engine(database_url)
    yield engine
    engine.dispose()


def _uow(engine):
    return lambda: UnitOfWork(lambda: Session(engine, expire_on_commit=False))


def _append(engine, n: int) -> None:
    with Session(engine) as session:
        for _ in range(n):
            audit.append(session, actor=SYSTEM, action="test.entry", outcome="completed", effective_at=T0, subject={})
        session.commit()


def _publish(engine, sink, at=T0, key=None) -> dict:
    return audit_log.publish_anchor(_uow(engine), key or audit_mac.current_key(), sink, at)


def _verify(engine, sink, key=None):
    return audit_log.verify(_uow(engine)(), None, T0, anchors=sink.read(), key=key)


def test_an_anchor_is_signed_written_outside_the_database_and_announced(engine, tmp_path):
    sink = audit_log.AnchorSink(tmp_path / "anchors")
    _append(engine, 3)
    published = _publish(engine, sink)
    key = audit_mac.current_key()
    assert published["published"] is True and published["seq"] == 3
    files = sorted(p.name for p in sink.directory.iterdir())
    assert files == [published["file"]] and files[0] == "anchor-000000000003-20260701T090000000000Z.json"
    record = json.loads((sink.directory / files[0]).read_text())
    assert set(record) == {"version", "seq", "hash", "anchored_at", "key_id", "signature"}
    assert record["anchored_at"] == "2026-07-01T09:00:00.000000+00:00" and record["key_id"] == key.key_id
    with Session(engine) as session:
        assert record["hash"] == audit.verify_chain(session).head_hash
        events = session.exec(select(OutboxEvent).where(OutboxEvent.type == "audit.anchored")).all()
    assert [e.payload for e in events] == [record]  # for admin webhooks
    # Nothing new: no second anchor of the same head; new entries: a new anchor.
    assert _publish(engine, sink, T0 + timedelta(hours=1)) == {
        "published": False,
        "reason": "unchanged",
        "seq": 3,
        "hash": record["hash"],
    }
    _append(engine, 2)
    assert _publish(engine, sink, T0 + timedelta(hours=2))["seq"] == 5
    result = _verify(engine, sink)
    assert result.check.valid and result.as_dict()["anchors"] == {
        "checked": 2,
        "matched": 2,
        "latest_seq": 5,
        "problem_count": 0,
        "problems": [],
    }


@pytest.mark.parametrize("damage", ["edited hash", "edited seq", "another key", "unreadable", "no signature"])
def test_an_anchor_file_that_does_not_check_is_a_finding(engine, tmp_path, damage):
    sink = audit_log.AnchorSink(tmp_path / "anchors")
    _append(engine, 4)
    _publish(engine, sink)
    _append(engine, 2)
    path = sink.directory / _publish(engine, sink, T0 + timedelta(hours=1))["file"]
    record = json.loads(path.read_text())
    with Session(engine) as session:
        at_3 = session.get(audit.AuditEntry, 3).hash
    if damage == "edited hash":
        record["hash"] = at_3
    elif damage == "edited seq":
        record["seq"] = 3
    elif damage == "another key":
        other = audit_mac.AuditKey(b"\x02" * 32)
        fields = {k: record[k] for k in audit_log.ANCHOR_FIELDS}
        record = {**fields, "signature": other.sign_anchor(fields)}
    elif damage == "no signature":
        del record["signature"]
    path.write_text("{ not json" if damage == "unreadable" else json.dumps(record))
    result = _verify(engine, sink)
    report = result.as_dict()
    assert not result.check.valid and result.check.reason == "anchor", report
    assert result.check.first_invalid_seq is None  # the chain itself is intact: the anchors were tampered with
    assert report["anchors"]["matched"] == 1 and report["anchors"]["problem_count"] == 1
    problem = report["anchors"]["problems"][0]
    assert problem["file"] == path.name
    assert problem["problem"] == ("unreadable" if damage == "unreadable" else "bad signature")


def test_a_chain_that_does_not_verify_gets_no_anchor(engine, tmp_path, caplog):
    sink = audit_log.AnchorSink(tmp_path / "anchors")
    _append(engine, 4)
    _publish(engine, sink)
    _append(engine, 2)
    with Session(engine) as session:
        tamper_with_audit(session)
        session.execute(text("UPDATE audit_entries SET outcome = 'approved' WHERE seq = 5"))
        session.commit()
    with caplog.at_level(logging.ERROR):
        result = _publish(engine, sink, T0 + timedelta(hours=1))
    assert result == {"published": False, "reason": "chain invalid", "first_invalid_seq": 5, "invalid_reason": "hash"}
    assert len(list(sink.directory.iterdir())) == 1
    assert any("no anchor published" in r.getMessage() for r in caplog.records)


def test_an_anchor_that_no_longer_matches_blocks_the_next_one(engine, tmp_path):
    """The newest anchor must still be in the chain: a rewrite before it (hashes recomputed
    consistently, so the chain alone looks fine) is not blessed by a fresh anchor."""
    sink = audit_log.AnchorSink(tmp_path / "anchors")
    build_chain(engine, 5)  # unsigned: the rewrite below needs no key to look consistent
    _publish(engine, sink)
    with Session(engine) as session:
        tamper_with_audit(session)
        session.execute(text("DELETE FROM audit_entries WHERE seq > 3"))
        head = session.get(audit.AuditEntry, 3)
        session.execute(text("UPDATE audit_chain_head SET seq = 3, hash = :h"), {"h": head.hash})
        session.commit()
    result = _publish(engine, sink, T0 + timedelta(hours=1))
    assert result["published"] is False and result["first_invalid_seq"] == 4 and result["invalid_reason"] == "anchor"


def test_the_first_anchor_after_the_upgrade_covers_the_unsigned_history(engine, tmp_path):
    sink = audit_log.AnchorSink(tmp_path / "anchors")
    build_chain(engine, 5)  # written before the upgrade: no MACs
    _append(engine, 2)
    before = _verify(engine, sink).as_dict()
    assert before["valid"] and before["unsigned"] == {"count": 5, "through_seq": 5, "anchored_by_seq": None}
    assert _publish(engine, sink)["seq"] == 7
    after = _verify(engine, sink).as_dict()
    assert after["valid"] and after["unsigned"] == {"count": 5, "through_seq": 5, "anchored_by_seq": 7}


def test_the_cron_task_publishes_to_the_runtime_s_anchor_directory(make_app, tmp_path):
    app = make_app(AUDIT_ANCHOR_DIR=str(tmp_path / "published"))
    runtime = app.extensions["rems"]
    assert runtime.anchor_dir == str(tmp_path / "published")
    _append(runtime.engine, 2)
    result = tasks.publish_audit_anchor(runtime, T0)
    assert result["published"] and (tmp_path / "published" / result["file"]).is_file()
    assert tasks.publish_audit_anchor(runtime, T0)["published"] is False


def test_the_anchor_directory_defaults_to_the_instance_folder(make_app, monkeypatch):
    monkeypatch.delenv("REMS_AUDIT_ANCHOR_DIR")
    runtime = make_app().extensions["rems"]
    assert runtime.anchor_dir.endswith("instance/audit-anchors")


@pytest.fixture
def rems(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")

    def run(*args: str):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else result.output

    return run


def test_rems_audit_anchor_publish_and_verify_anchors(rems, tmp_path, monkeypatch):
    anchors = tmp_path / "anchors"
    assert rems("db", "upgrade")[0] == 0
    assert rems("demo", "seed")[0] == 0
    code, published = rems("audit", "anchor", "--publish", "--dir", str(anchors))
    assert code == 0 and published["published"] and (anchors / published["file"]).is_file()
    monkeypatch.setenv("REMS_AUDIT_ANCHOR_DIR", str(anchors))
    code, again = rems("audit", "anchor", "--publish")  # the setting names the same directory
    assert code == 0 and again["reason"] == "unchanged"
    code, report = rems("audit", "verify", "--anchors", str(anchors))
    assert code == 0 and report["valid"] and report["anchors"]["matched"] == 1
    assert report["unsigned"] == {"count": 0, "through_seq": None, "anchored_by_seq": None}
    code, _ = rems("audit", "verify", "--anchors", str(tmp_path / "missing"))
    assert code == 2
    # The plain form prints the head as before.
    code, head = rems("audit", "anchor")
    assert code == 0 and head["anchor"] == f"{head['seq']}:{head['hash']}"


def test_the_audit_anchored_event_is_owed_to_admin_webhooks_only(make_app, tmp_path):
    """The event goes through the outbox like any other: an admin's subscription to
    ``audit.anchored`` is owed a delivery carrying the signed anchor; a prescriber's is not
    (it names no prescriber)."""
    from rems_service.db.models import WebhookSubscription
    from rems_service.db.webhook_store import WebhookStore
    from rems_service.services import webhooks
    from tests.helpers import make_prescriber

    runtime = make_app(AUDIT_ANCHOR_DIR=str(tmp_path / "anchors")).extensions["rems"]
    prescriber = make_prescriber(runtime)
    with Session(runtime.engine) as session:
        store = WebhookStore(session)
        admin = WebhookSubscription(
            url="https://receiver.example/admin", events=["audit.anchored"], secret="s" * 64, created_at=T0
        )
        mine = WebhookSubscription(
            url="https://receiver.example/prescriber",
            events=["audit.anchored"],
            secret="s" * 64,
            prescriber_id=prescriber.id,
            created_at=T0,
        )
        store.add(admin)
        store.add(mine)
        session.commit()
        admin_id = admin.id
    result = tasks.publish_audit_anchor(runtime, T0 + timedelta(days=1))
    assert result["published"], result
    with Session(runtime.engine) as session:
        (event,) = session.exec(select(OutboxEvent).where(OutboxEvent.type == "audit.anchored")).all()
        store = WebhookStore(session)
        owed = webhooks.fan_out(store, event, T0 + timedelta(days=1))
        session.commit()
        (delivery,) = [store.session.get(webhooks.WebhookDelivery, d) for d in owed]
    assert delivery.subscription_id == admin_id
    body = json.loads(delivery.body)
    assert body["type"] == "audit.anchored"
    assert {k: body["data"][k] for k in ("seq", "hash", "signature")} == {
        k: result[k] for k in ("seq", "hash", "signature")
    }
