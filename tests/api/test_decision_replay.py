"""`rems audit replay`: a recorded decision decided again from its stored snapshot
and program version gives the same outcome, reasons and validity; tampering is caught."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import select

from rems_service.cli import main
from rems_service.db.models import DecisionRecord
from rems_service.services import decisions
from rems_service.services.errors import NotFound
from tests.helpers import ADULT_FRP, NOW, approved_authorization, authorize, dispense, enrolled, ready_patient


@pytest.fixture
def rems(monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    return run


def make_decisions(world):
    """An approved and a denied authorization, an approved and a denied dispense."""
    patient, auth = approved_authorization(world, ADULT_FRP)
    denied_auth = authorize(world, enrolled(world, ADULT_FRP))
    ok = dispense(world, auth["authorization_number"], patient["rems_patient_id"], at=NOW + timedelta(hours=1))
    no = dispense(world, auth["authorization_number"], patient["rems_patient_id"], at=NOW + timedelta(hours=2))
    assert [auth["decision"], denied_auth.json["decision"], ok.json["decision"], no.json["decision"]] == [
        "approved",
        "denied",
        "approved",
        "denied",
    ]
    return [auth["audit_seq"], denied_auth.json["audit_seq"], ok.json["audit_seq"], no.json["audit_seq"]]


def test_each_decision_replays_by_seq(world, rems):
    for seq in make_decisions(world):
        (out,) = rems("audit", "replay", str(seq))
        assert out["seq"] == seq and out["matches"] is True and out["snapshot_digest_matches"] is True
        assert out["recorded"] == out["replayed"]


def test_replay_all_reports_every_decision(world, rems):
    make_decisions(world)
    assert rems("audit", "replay", "--all")[-1] == {"replayed": 4, "mismatched": 0}


def test_replay_of_a_non_decision_entry_is_refused(world, rems):
    make_decisions(world)
    rems("audit", "replay", "1", code=2)  # entry 1 registers a participant
    rems("audit", "replay", code=2)


def test_a_tampered_snapshot_is_detected(world, rems):
    seq = make_decisions(world)[0]
    with world.runtime.session() as s:
        record = s.exec(select(DecisionRecord).where(DecisionRecord.audit_seq == seq)).one()
        snapshot = dict(record.snapshot)
        snapshot["request"] = {**snapshot["request"], "days_supply": 90}
        s.execute(
            text("UPDATE decisions SET snapshot = :snap WHERE audit_seq = :seq"),
            {"snap": json.dumps(snapshot), "seq": seq},
        )
        s.commit()
    (out,) = rems("audit", "replay", str(seq), code=1)
    assert out["snapshot_digest_matches"] is False
    # The altered snapshot also decides differently: R-AUTH-2 now fails.
    assert out["replayed"]["outcome"] == "denied" and out["recorded"]["outcome"] == "approved"
    # Leave the database replayable for the suite-wide check.
    with world.runtime.session() as s:
        s.execute(
            text("UPDATE decisions SET snapshot = :snap WHERE audit_seq = :seq"),
            {"snap": json.dumps(record.snapshot), "seq": seq},
        )
        s.commit()


def test_replay_uses_the_recorded_program_version(world, runtime):
    seq = make_decisions(world)[2]
    result = decisions.replay(runtime.uow(), runtime.program, seq)
    assert result.matches and result.kind == "dispense"
    assert result.result.recorded["valid_until"] is not None


def test_replaying_a_missing_entry_is_not_found(world, runtime):
    ready_patient(world)
    with pytest.raises(NotFound):
        decisions.replay(runtime.uow(), runtime.program, 10_000)
