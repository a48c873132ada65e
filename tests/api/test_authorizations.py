"""API.md, Authorizations and Dispenses: the end-to-end flow over HTTP, idempotency,
visibility and the error cases. Rule-by-rule edges are in tests/unit/test_rules_*.py."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlmodel import func, select

from rems_service.db.models import AuditEntry, Authorization, DecisionRecord, Dispense, IdempotencyKey, OutboxEvent
from tests.helpers import (
    ADULT_FRP,
    COUNSELED,
    NOW,
    add_test,
    approved_authorization,
    audit_count,
    authorize,
    dispense,
    enrolled,
    make_user,
    ready_patient,
)


def count(runtime, model) -> int:
    with runtime.session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_full_flow_authorize_dispense_complete(world):
    patient, decision = approved_authorization(world, ADULT_FRP)
    assert decision["reasons"] == [] and decision["risk_category"] == "FRP_ADULT"
    assert decision["authorization_number"].startswith("RA-")
    assert decision["expires_at"].startswith((NOW + timedelta(days=7)).date().isoformat())
    number = decision["authorization_number"]
    looked_up = world.api.as_(world.pharmacist_token).at(NOW).get(f"/api/v1/authorizations/{number}")
    assert looked_up.status_code == 200 and looked_up.json["status"] == "issued"
    assert looked_up.json["rems_patient_id"] == patient["rems_patient_id"]

    r = dispense(world, number, patient["rems_patient_id"], at=NOW + timedelta(hours=1))
    assert r.status_code == 201 and r.json["decision"] == "approved", r.json
    confirmation = r.json["confirmation_number"]
    assert confirmation.startswith("RC-") and r.json["confirmation_expires_at"]
    assert (
        world.api.as_(world.prescriber_token)
        .at(NOW + timedelta(hours=1))
        .get(f"/api/v1/authorizations/{number}")
        .json["status"]
        == "confirmed"
    )

    done = (
        world.api.as_(world.pharmacist_token)
        .at(NOW + timedelta(hours=2))
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={})
    )
    assert done.status_code == 200, done.json
    assert done.json["status"] == "dispensed" and done.json["dispensed_at"]
    assert (
        world.api.as_(world.prescriber_token)
        .at(NOW + timedelta(hours=2))
        .get(f"/api/v1/authorizations/{number}")
        .json["status"]
        == "dispensed"
    )
    p = world.api.as_(world.prescriber_token).at(NOW + timedelta(hours=2)).get(f"/api/v1/patients/{patient['id']}").json
    assert p["status"] == "on_therapy" and p["therapy_started_at"]

    again = dispense(world, number, patient["rems_patient_id"], at=NOW + timedelta(hours=3))
    assert again.json["decision"] == "denied"
    assert "AUTHORIZATION_ALREADY_USED" in [x["code"] for x in again.json["reasons"]]


def test_denial_is_a_recorded_decision_with_every_reason(world):
    patient = enrolled(world, ADULT_FRP)  # no tests, no survey
    r = authorize(world, patient, days_supply=30, prescriber_survey={"counseled_on_risks": False})
    assert r.status_code == 201 and r.json["decision"] == "denied"
    codes = {x["code"] for x in r.json["reasons"]}
    assert codes == {
        "DAYS_SUPPLY_EXCEEDED",
        "PRESCRIBER_SURVEY_INCOMPLETE",
        "PREGNANCY_TEST_MISSING",
        "PATIENT_SURVEY_OVERDUE",
    }
    assert all(x["rule"] and x["message"] for x in r.json["reasons"])
    assert "authorization_number" not in r.json
    with world.runtime.session() as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.seq == r.json["audit_seq"])).one()
        assert entry.action == "authorization.decided" and entry.outcome == "denied"
        assert {x["code"] for x in entry.reasons} == codes
        record = s.get(DecisionRecord, uuid.UUID(entry.details["decision_id"]))
        assert record.outcome == "denied"
        dumped = json.dumps(record.snapshot) + json.dumps(entry.subject) + json.dumps(entry.details)
        for phi in (ADULT_FRP["first_name"], ADULT_FRP["last_name"], ADULT_FRP["date_of_birth"]):
            assert phi not in dumped
        assert s.exec(select(OutboxEvent).where(OutboxEvent.type == "authorization.denied")).first() is not None
    assert count(world.runtime, Authorization) == 0


def test_another_prescribers_patient_is_denied_without_clinical_detail(world):
    patient = ready_patient(world, ADULT_FRP)
    r = authorize(world, patient, token=world.other_prescriber_token)
    assert r.status_code == 201 and r.json["decision"] == "denied"
    assert [x["code"] for x in r.json["reasons"]] == ["PATIENT_PRESCRIBER_MISMATCH"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"days_supply": 0}, "days_supply"),
        ({"days_supply": "28"}, "days_supply"),
        ({"quantity": -1}, "quantity"),
        ({"strength_mg": 7}, "strength_mg"),
        ({"patient_id": "not-a-uuid"}, "patient_id"),
        ({"prescriber_survey": {"counseled_on_risks": "yes"}}, "prescriber_survey.counseled_on_risks"),
        ({"prescriber_survey": {}}, "prescriber_survey.counseled_on_risks"),
        ({"status": "issued"}, "status"),
        ({"authorization_number": "RA-1"}, "authorization_number"),
    ],
)
def test_malformed_authorization_requests_are_422_and_write_nothing(world, changes, field):
    patient = ready_patient(world)
    before = count(world.runtime, AuditEntry)
    r = authorize(world, patient, **changes)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]
    assert count(world.runtime, AuditEntry) == before


def test_unknown_patient_is_404(world):
    r = authorize(world, {"id": "00000000-0000-4000-8000-000000000000"})
    assert r.status_code == 404


@pytest.mark.parametrize("role_token", ["pharmacist_token", "auditor", "admin"])
def test_only_prescribers_request_authorizations(world, role_token):
    patient = ready_patient(world)
    assert authorize(world, patient, token=getattr(world, role_token)).status_code == 403


def test_authorization_lookup_visibility(world):
    _, decision = approved_authorization(world)
    number = decision["authorization_number"]
    assert world.api.as_(world.other_prescriber_token).get(f"/api/v1/authorizations/{number}").status_code == 404
    assert world.api.as_(world.other_pharmacist_token).get(f"/api/v1/authorizations/{number}").status_code == 200
    assert world.api.as_(world.auditor).get(f"/api/v1/authorizations/{number}").status_code == 403
    assert world.api.as_(world.pharmacist_token).get("/api/v1/authorizations/RA-00000-00000-00000").status_code == 404
    # Typed by hand: lower case and O for 0 still find it.
    typed = number.lower().replace("0", "o")
    assert world.api.as_(world.admin).get(f"/api/v1/authorizations/{typed}").json["number"] == number


def test_numbers_are_unguessable_and_unambiguous(world):
    patient = ready_patient(world)
    numbers = {authorize(world, patient).json["authorization_number"] for _ in range(5)}
    assert len(numbers) == 5
    for number in numbers:
        prefix, *groups = number.split("-")
        assert prefix == "RA" and [len(g) for g in groups] == [5, 5, 5]
        assert not set("".join(groups)) & set("ILOU")


def test_void_by_its_prescriber_then_dispense_is_denied(world):
    patient, decision = approved_authorization(world)
    number = decision["authorization_number"]
    assert (
        world.api.as_(world.other_prescriber_token)
        .at(NOW)
        .post(f"/api/v1/authorizations/{number}/void", json={})
        .status_code
        == 404
    )
    r = (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post(f"/api/v1/authorizations/{number}/void", json={"reason": "dose change"})
    )
    assert r.status_code == 200 and r.json["status"] == "voided"
    assert (
        world.api.as_(world.prescriber_token).at(NOW).post(f"/api/v1/authorizations/{number}/void", json={}).status_code
        == 409
    )
    denied = dispense(world, number, patient["rems_patient_id"])
    assert [x["code"] for x in denied.json["reasons"]] == ["AUTHORIZATION_VOIDED"]


def test_void_releases_nothing_after_dispense(world):
    patient, decision = approved_authorization(world)
    number = decision["authorization_number"]
    confirmation = dispense(world, number, patient["rems_patient_id"]).json["confirmation_number"]
    assert (
        world.api.as_(world.pharmacist_token)
        .at(NOW)
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={})
        .status_code
        == 200
    )
    r = world.api.as_(world.prescriber_token).at(NOW).post(f"/api/v1/authorizations/{number}/void", json={})
    assert r.status_code == 409 and "dispensed" in r.json["message"]


def test_voiding_a_confirmed_authorization_voids_its_confirmation(world):
    patient, decision = approved_authorization(world)
    number = decision["authorization_number"]
    confirmation = dispense(world, number, patient["rems_patient_id"]).json["confirmation_number"]
    world.api.as_(world.prescriber_token).at(NOW).post(f"/api/v1/authorizations/{number}/void", json={})
    d = world.api.as_(world.pharmacist_token).at(NOW).get(f"/api/v1/dispenses/{confirmation}")
    assert d.json["status"] == "voided"
    assert (
        world.api.as_(world.pharmacist_token)
        .at(NOW)
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={})
        .status_code
        == 409
    )


def test_complete_after_the_confirmation_window_is_409_confirmation_expired(world):
    patient, decision = approved_authorization(world)
    confirmation = dispense(world, decision["authorization_number"], patient["rems_patient_id"]).json[
        "confirmation_number"
    ]
    late = (
        world.api.as_(world.pharmacist_token)
        .at(NOW + timedelta(hours=24))
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={})
    )
    assert late.status_code == 409 and "CONFIRMATION_EXPIRED" in late.json["message"]
    ok = (
        world.api.as_(world.pharmacist_token)
        .at(NOW + timedelta(hours=23, minutes=59))
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={})
    )
    assert ok.status_code == 200


def test_R_DISP_2_a_hand_over_needs_a_certified_pharmacy_and_a_trained_pharmacist_at_that_moment(world):
    """R-DISP-2 with R-PHA-1/3: an untrained pharmacist of the same pharmacy, or any pharmacist
    once the pharmacy is suspended, cannot record the hand-over; nothing changes."""
    patient, decision = approved_authorization(world)
    confirmation = dispense(world, decision["authorization_number"], patient["rems_patient_id"]).json[
        "confirmation_number"
    ]
    untrained = make_user(world.runtime, "pharmacist", pharmacy_id=world.pharmacy.id)[1]
    before = audit_count(world.runtime)
    r = world.api.as_(untrained).at(NOW).post(f"/api/v1/dispenses/{confirmation}/complete", json={})
    assert r.status_code == 409 and r.json["errors"] == {"pharmacist": ["PHARMACIST_NOT_TRAINED"]}
    assert "R-PHA-3" in r.json["message"]
    admin = world.api.as_(world.admin).at(NOW)
    assert admin.post(f"/api/v1/pharmacies/{world.pharmacy.id}/suspend", json={"reason": "audit"}).status_code == 200
    suspended_at = audit_count(world.runtime)
    assert suspended_at == before + 1
    r = world.api.as_(world.pharmacist_token).at(NOW).post(f"/api/v1/dispenses/{confirmation}/complete", json={})
    assert r.status_code == 409 and r.json["errors"] == {"pharmacy": ["PHARMACY_NOT_CERTIFIED"]}
    assert audit_count(world.runtime) == suspended_at
    got = world.api.as_(world.pharmacist_token).at(NOW).get(f"/api/v1/dispenses/{confirmation}").json
    assert got["status"] == "confirmed" and got["dispensed_at"] is None
    assert admin.post(f"/api/v1/pharmacies/{world.pharmacy.id}/reinstate", json={}).status_code == 200
    ok = world.api.as_(world.pharmacist_token).at(NOW).post(f"/api/v1/dispenses/{confirmation}/complete", json={})
    assert ok.status_code == 200 and ok.json["status"] == "dispensed"


def test_complete_and_reverse_belong_to_the_dispensing_pharmacy(world):
    patient, decision = approved_authorization(world)
    confirmation = dispense(world, decision["authorization_number"], patient["rems_patient_id"]).json[
        "confirmation_number"
    ]
    for action in ("complete", "reverse"):
        r = (
            world.api.as_(world.other_pharmacist_token)
            .at(NOW)
            .post(f"/api/v1/dispenses/{confirmation}/{action}", json={})
        )
        assert r.status_code == 404
    assert (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={})
        .status_code
        == 403
    )
    assert (
        world.api.as_(world.pharmacist_token)
        .at(NOW)
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={"x": 1})
        .status_code
        == 422
    )


def test_reverse_frees_the_authorization_while_valid(world):
    patient, decision = approved_authorization(world)
    number = decision["authorization_number"]
    confirmation = dispense(world, number, patient["rems_patient_id"]).json["confirmation_number"]
    r = (
        world.api.as_(world.pharmacist_token)
        .at(NOW)
        .post(f"/api/v1/dispenses/{confirmation}/reverse", json={"reason": "patient did not come"})
    )
    assert r.status_code == 200 and r.json["status"] == "reversed"
    assert (
        world.api.as_(world.pharmacist_token)
        .at(NOW)
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={})
        .status_code
        == 409
    )
    assert (
        world.api.as_(world.pharmacist_token).at(NOW).get(f"/api/v1/authorizations/{number}").json["status"] == "issued"
    )
    second = dispense(
        world, number, patient["rems_patient_id"], token=world.other_pharmacist_token, at=NOW + timedelta(hours=1)
    )
    assert second.json["decision"] == "approved", second.json


def test_lapsed_confirmation_frees_the_authorization_without_any_job(world):
    patient, decision = approved_authorization(world)
    number = decision["authorization_number"]
    first = dispense(world, number, patient["rems_patient_id"]).json["confirmation_number"]
    held = dispense(world, number, patient["rems_patient_id"], at=NOW + timedelta(hours=23))
    assert [x["code"] for x in held.json["reasons"]] == ["AUTHORIZATION_ALREADY_USED"]
    later = dispense(world, number, patient["rems_patient_id"], at=NOW + timedelta(hours=24))
    assert later.json["decision"] == "approved", later.json
    assert (
        world.api.as_(world.pharmacist_token)
        .at(NOW + timedelta(hours=25))
        .get(f"/api/v1/dispenses/{first}")
        .json["status"]
        == "lapsed"
    )


def test_positive_test_voids_open_authorizations_and_confirmations(world):
    patient, decision = approved_authorization(world, ADULT_FRP)
    number = decision["authorization_number"]
    confirmation = dispense(world, number, patient["rems_patient_id"]).json["confirmation_number"]
    spare = authorize(world, patient).json["authorization_number"]
    assert add_test(world, patient["id"], NOW, result="positive", at=NOW + timedelta(minutes=5)).status_code == 201
    later = NOW + timedelta(minutes=6)
    for n in (number, spare):
        assert (
            world.api.as_(world.pharmacist_token).at(later).get(f"/api/v1/authorizations/{n}").json["status"]
            == "voided"
        )
    assert (
        world.api.as_(world.pharmacist_token).at(later).get(f"/api/v1/dispenses/{confirmation}").json["status"]
        == "voided"
    )
    assert (
        world.api.as_(world.pharmacist_token)
        .at(later)
        .post(f"/api/v1/dispenses/{confirmation}/complete", json={})
        .status_code
        == 409
    )
    with world.runtime.session() as s:
        event = s.exec(select(OutboxEvent).where(OutboxEvent.type == "pregnancy.reported")).one()
        assert event.payload["authorizations_voided"] == 2


def test_idempotent_replay_returns_the_same_bytes_and_writes_nothing(world):
    patient, decision = approved_authorization(world)
    number = decision["authorization_number"]
    key = {"Idempotency-Key": "dispense-0001"}
    first = dispense(world, number, patient["rems_patient_id"], headers=key)
    assert first.status_code == 201 and first.json["decision"] == "approved"
    counts = [count(world.runtime, m) for m in (AuditEntry, Dispense, DecisionRecord, OutboxEvent)]
    replay = dispense(world, number, patient["rems_patient_id"], headers=key, at=NOW + timedelta(hours=1))
    assert replay.status_code == 201 and replay.data == first.data
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert [count(world.runtime, m) for m in (AuditEntry, Dispense, DecisionRecord, OutboxEvent)] == counts
    other = dispense(world, number, patient["rems_patient_id"], headers=key, days_supply=21)
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]
    # Keys are scoped to the pharmacy: another pharmacy's identical key is its own request.
    theirs = dispense(world, number, patient["rems_patient_id"], headers=key, token=world.other_pharmacist_token)
    assert theirs.status_code == 201 and theirs.data != first.data
    assert [x["code"] for x in theirs.json["reasons"]] == ["AUTHORIZATION_ALREADY_USED"]


def test_idempotent_authorization_replay(world):
    patient = ready_patient(world)
    key = {"Idempotency-Key": "rx-42"}
    first = authorize(world, patient, headers=key)
    second = authorize(world, patient, headers=key)
    assert second.data == first.data and count(world.runtime, Authorization) == 1


def test_idempotency_key_in_flight_is_409(world):
    patient, decision = approved_authorization(world)
    with world.runtime.session() as s:
        from rems_service.db.engine import database_now
        from rems_service.services.idempotency import digest

        s.add(
            IdempotencyKey(
                scope=f"pharmacy:{world.pharmacy.id}",
                endpoint="dispenses",
                key="busy",
                request_digest=digest(
                    {
                        "endpoint": "dispenses",
                        "body": {
                            "authorization_number": decision["authorization_number"],
                            "rems_patient_id": patient["rems_patient_id"],
                            "days_supply": 28,
                            "quantity": 28,
                            "counseling": COUNSELED,
                        },
                    }
                ),
                created_at=database_now(s),
            )
        )
        s.commit()
    r = dispense(
        world, decision["authorization_number"], patient["rems_patient_id"], headers={"Idempotency-Key": "busy"}
    )
    assert r.status_code == 409 and "Idempotency-Key" in r.json["errors"]
    assert count(world.runtime, Dispense) == 0


def test_bad_idempotency_key_is_422(world):
    patient = ready_patient(world)
    r = authorize(world, patient, headers={"Idempotency-Key": "x" * 300})
    assert r.status_code == 422 and "Idempotency-Key" in r.json["errors"]


def test_a_failure_while_deciding_writes_nothing_and_frees_the_key(world, monkeypatch):
    patient, decision = approved_authorization(world)
    from rems_service.db import outbox

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    counts = [count(world.runtime, m) for m in (AuditEntry, Dispense, DecisionRecord, OutboxEvent, IdempotencyKey)]
    monkeypatch.setattr(outbox, "event_values", broken)
    world.api.client.application.config["PROPAGATE_EXCEPTIONS"] = False
    r = dispense(world, decision["authorization_number"], patient["rems_patient_id"], headers={"Idempotency-Key": "k1"})
    assert r.status_code == 500
    assert [
        count(world.runtime, m) for m in (AuditEntry, Dispense, DecisionRecord, OutboxEvent, IdempotencyKey)
    ] == counts
    monkeypatch.undo()
    retry = dispense(
        world, decision["authorization_number"], patient["rems_patient_id"], headers={"Idempotency-Key": "k1"}
    )
    assert retry.json["decision"] == "approved"


def _blind_to_confirmations(monkeypatch, times: int):
    """Hide the live confirmation from the next ``times`` decisions, as a request racing
    the winner's commit would see it; the unique index must then catch the second one."""
    import dataclasses

    from rems_service.db import decision_sql
    from rems_service.db.repository import Repository

    real, real_read = Repository.holding_dispense, decision_sql.read_dispense_facts
    calls = {"n": 0}

    def blind(repo, authorization_id, lock=False):  # SQLite: the holding's own read
        calls["n"] += 1
        return None if calls["n"] <= times else real(repo, authorization_id, lock)

    def blind_read(*args):  # PostgreSQL: the one read of every fact after the lock
        calls["n"] += 1
        facts = real_read(*args)
        return dataclasses.replace(facts, holding_id=None) if calls["n"] <= times else facts

    monkeypatch.setattr(Repository, "holding_dispense", blind)
    monkeypatch.setattr(decision_sql, "read_dispense_facts", blind_read)
    return calls


def test_a_race_lost_to_the_unique_index_is_decided_again_and_denied(world, monkeypatch):
    patient, decision = approved_authorization(world)
    number = decision["authorization_number"]
    assert dispense(world, number, patient["rems_patient_id"]).json["decision"] == "approved"
    calls = _blind_to_confirmations(monkeypatch, times=1)
    r = dispense(world, number, patient["rems_patient_id"], token=world.other_pharmacist_token)
    assert r.status_code == 201, r.json
    assert [x["code"] for x in r.json["reasons"]] == ["AUTHORIZATION_ALREADY_USED"]
    assert calls["n"] == 2
    assert count(world.runtime, Dispense) == 1


def test_losing_twice_is_a_503_and_records_nothing(world, monkeypatch):
    patient, decision = approved_authorization(world)
    number = decision["authorization_number"]
    assert dispense(world, number, patient["rems_patient_id"]).json["decision"] == "approved"
    before = [count(world.runtime, m) for m in (AuditEntry, Dispense, DecisionRecord)]
    _blind_to_confirmations(monkeypatch, times=99)
    r = dispense(world, number, patient["rems_patient_id"], token=world.other_pharmacist_token)
    assert r.status_code == 503
    assert [count(world.runtime, m) for m in (AuditEntry, Dispense, DecisionRecord)] == before


def test_the_database_refuses_a_second_holding_dispense(world):
    """R-DISP-5's backstop holds on every backend, whatever the service does."""
    from sqlalchemy.exc import IntegrityError

    patient, decision = approved_authorization(world)
    dispense(world, decision["authorization_number"], patient["rems_patient_id"])
    with world.runtime.session() as s:
        existing = s.exec(select(Dispense)).one()
        clone = Dispense(**{**existing.model_dump(), "id": uuid.uuid4(), "confirmation_number": "RC-TEST0-TEST0-TEST0"})
        s.add(clone)
        with pytest.raises(IntegrityError):
            s.flush()


def test_R_DISP_6_a_100_capsule_dispense_against_an_authorization_for_28_is_denied(world):
    """The issue's example, end to end: the authorization is for 28 capsules."""
    patient, decision = approved_authorization(world, ADULT_FRP)
    r = dispense(world, decision["authorization_number"], patient["rems_patient_id"], quantity=100)
    assert r.status_code == 201 and r.json["decision"] == "denied", r.json
    assert r.json["reasons"] == [
        {
            "code": "QUANTITY_EXCEEDED",
            "rule": "R-DISP-6",
            "message": "100 capsules requested; the authorization is for 28 capsules at most.",
            "next_step": "Set `quantity` to 28 or less, as authorized.",
        }
    ]
    assert "confirmation_number" not in r.json
    assert dispense(world, decision["authorization_number"], patient["rems_patient_id"]).json["decision"] == "approved"


def test_R_AUTH_5_more_capsules_than_days_is_denied_with_a_next_step(world):
    patient = ready_patient(world, ADULT_FRP)
    r = authorize(world, patient, days_supply=21, quantity=28)
    assert r.status_code == 201 and r.json["decision"] == "denied"
    (reason,) = r.json["reasons"]
    assert (reason["code"], reason["rule"]) == ("QUANTITY_EXCEEDED", "R-AUTH-5")
    assert "`quantity` to 21 or less" in reason["next_step"]
    assert authorize(world, patient, days_supply=21, quantity=21).json["decision"] == "approved"


def test_every_denial_reason_over_http_carries_a_next_step(world):
    patient = enrolled(world, ADULT_FRP)  # no tests, no survey
    r = authorize(world, patient, days_supply=30, quantity=31, prescriber_survey={"counseled_on_risks": True})
    assert {x["code"] for x in r.json["reasons"]} >= {"QUANTITY_EXCEEDED", "PRESCRIBER_SURVEY_INCOMPLETE"}
    assert all(x["next_step"] for x in r.json["reasons"])
    fields = " ".join(x["next_step"] for x in r.json["reasons"])
    assert "`prescriber_survey.contraception_confirmed: true`" in fields and "`days_supply` to 28" in fields
    with world.runtime.session() as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.seq == r.json["audit_seq"])).one()
    assert entry.reasons == r.json["reasons"]


def test_an_authorization_number_collision_is_decided_again_then_503(world, monkeypatch):
    """No pre-check of the number drawn: the unique constraint refuses a collision, the unit of
    work rolls back and the decision is made again with another number; two collisions in a
    row are a 503 with nothing recorded (never an approval without its authorization)."""
    from rems_service.services import authorizations
    from workflows.identifiers import new_reference_number

    patient, first = approved_authorization(world)
    taken = first["authorization_number"]
    drawn = []

    def colliding_once(prefix):
        drawn.append(prefix)
        return taken if len(drawn) == 1 else new_reference_number(prefix)

    monkeypatch.setattr(authorizations, "new_reference_number", colliding_once)
    before = [count(world.runtime, m) for m in (AuditEntry, Authorization, DecisionRecord)]
    r = authorize(world, patient, headers={"Idempotency-Key": "collide-once"})
    assert r.status_code == 201 and r.json["decision"] == "approved", r.json
    assert r.json["authorization_number"] != taken and len(drawn) == 2
    assert [count(world.runtime, m) for m in (AuditEntry, Authorization, DecisionRecord)] == [n + 1 for n in before]

    monkeypatch.setattr(authorizations, "new_reference_number", lambda prefix: taken)
    before = [count(world.runtime, m) for m in (AuditEntry, Authorization, DecisionRecord)]
    r = authorize(world, patient)
    assert r.status_code == 503
    assert [count(world.runtime, m) for m in (AuditEntry, Authorization, DecisionRecord)] == before
