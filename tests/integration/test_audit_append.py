"""R-AUD-1, R-AUD-2, R-AUD-3: the append path of the audit log."""

from __future__ import annotations

import pytest
from sqlmodel import select

from rems_service.db import audit_chain as audit
from rems_service.db.models import AuditEntry, OutboxEvent, Prescriber
from rems_service.services import prescribers
from rems_service.services.errors import Conflict
from tests.helpers import PRESCRIBER_ATTESTED, make_prescriber, make_user, tamper_with_audit, utc
from workflows.actors import SYSTEM, Actor
from workflows.audit import GENESIS_HASH, chain_hash


def entries(runtime):
    with runtime.uow() as uow:
        return list(audit.iter_entries(uow.session))


def test_state_changes_are_chained_with_actor_time_and_states(runtime):
    now = utc(2026, 5, 1, 8)
    admin_id, _ = make_user(runtime, "admin")
    actor = Actor(user_id=admin_id.id, role="admin")
    row = prescribers.register(runtime.uow(), actor, now, npi="1234567893", first_name="Ada", last_name="Osler")
    prescribers.certify(runtime.uow(), actor, now, row.id, PRESCRIBER_ATTESTED)
    prescribers.suspend(runtime.uow(), actor, now, row.id, "board review")
    prescribers.decertify(runtime.uow(), actor, now, row.id, "revoked")
    log = entries(runtime)
    assert [e.action for e in log] == [
        "user.created",
        "prescriber.registered",
        "prescriber.certified",
        "prescriber.suspended",
        "prescriber.decertified",
    ]
    suspended = log[3]
    assert suspended.actor_user_id == admin_id.id and suspended.actor_role == "admin"
    assert suspended.effective_at == now and suspended.recorded_at.tzinfo is not None
    assert suspended.details["from_state"] == "certified" and suspended.details["to_state"] == "suspended"
    assert suspended.details["reason"] == "board review"
    assert suspended.prescriber_id == row.id and suspended.outcome == "completed"
    assert [e.seq for e in log] == [1, 2, 3, 4, 5]
    prev = GENESIS_HASH
    for e in log:
        assert e.prev_hash == prev and e.hash == chain_hash(prev, audit.entry_content(e))
        prev = e.hash
    with runtime.uow() as uow:
        assert audit.verify_chain(uow.session).valid
        events = uow.session.exec(select(OutboxEvent.type)).all()
    assert sorted(events) == sorted(e.action for e in log)


def test_a_failed_change_writes_nothing(runtime):
    row = make_prescriber(runtime, certified=True)
    before = entries(runtime)
    with pytest.raises(Conflict):
        prescribers.certify(runtime.uow(), SYSTEM, utc(2026, 5, 1), row.id, PRESCRIBER_ATTESTED)
    assert [(e.seq, e.hash) for e in entries(runtime)] == [(e.seq, e.hash) for e in before]


def test_an_exception_after_the_audit_append_rolls_everything_back(runtime):
    row = make_prescriber(runtime, certified=False)
    before = len(entries(runtime))
    with pytest.raises(RuntimeError):
        with runtime.uow() as uow:
            audit.append(
                uow.session,
                actor=SYSTEM,
                action="x.y",
                outcome="completed",
                effective_at=utc(2026, 1, 1),
                subject={"prescriber_id": row.id},
            )
            p = uow.session.get(Prescriber, row.id)
            p.status_reason = "half-written"
            uow.session.add(p)
            raise RuntimeError("boom")
    assert len(entries(runtime)) == before
    with runtime.uow() as uow:
        assert uow.session.get(Prescriber, row.id).status_reason is None
        assert audit.verify_chain(uow.session).valid


@pytest.mark.parametrize("key", ["first_name", "last_name", "date_of_birth", "name"])
def test_phi_keys_are_refused(runtime, key):
    with runtime.uow() as uow:
        with pytest.raises(ValueError, match="R-AUD-3"):
            audit.append(
                uow.session,
                actor=SYSTEM,
                action="x",
                outcome="completed",
                effective_at=utc(2026, 1, 1),
                subject={"rems_patient_id": "P1"},
                details={"nested": {key: "x"}},
            )


def test_no_participant_names_in_the_audit_log(runtime):
    make_prescriber(runtime)
    text = " ".join(str(e.model_dump()) for e in entries(runtime))
    assert "Ada" not in text and "Osler" not in text


def test_verify_detects_a_removed_tail(runtime):
    make_prescriber(runtime)
    with runtime.uow() as uow:
        last = uow.session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        tamper_with_audit(uow.session)
        uow.session.delete(last)
        uow.commit()
    with runtime.uow() as uow:
        check = audit.verify_chain(uow.session)
    assert not check.valid and check.first_invalid_seq == last.seq
