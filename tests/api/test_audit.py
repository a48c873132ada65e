"""API.md, Audit: the auditor's filters, pages, single entries, verification and
export; every read recorded; patients only by REMS id (R-AUD-1 to R-AUD-3)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from rems_service.db.models import AuditEntry
from tests.helpers import (
    ADULT_FRP,
    ADULT_MALE,
    NOW,
    approved_authorization,
    authorize,
    dispense,
    enrolled,
    tamper_with_audit,
)


@pytest.fixture
def history(world):
    """Decisions by two prescribers and two pharmacies, approved and denied."""
    patient, auth = approved_authorization(world, ADULT_MALE)
    ok = dispense(world, auth["authorization_number"], patient["rems_patient_id"], at=NOW + timedelta(hours=1)).json
    used = dispense(
        world,
        auth["authorization_number"],
        patient["rems_patient_id"],
        token=world.other_pharmacist_token,
        at=NOW + timedelta(hours=2),
    ).json
    stranger = enrolled(world, ADULT_FRP)
    denied = authorize(world, stranger, at=NOW + timedelta(days=1)).json
    return {"patient": patient, "auth": auth, "ok": ok, "used": used, "denied": denied, "stranger": stranger}


def events(world, token=None, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return world.api.as_(token or world.auditor).get(f"/api/v1/audit/events?{query}")


def seqs(response) -> list[int]:
    assert response.status_code == 200, response.json
    return [i["seq"] for i in response.json["items"]]


def test_auditor_sees_every_pharmacys_decisions_newest_first(world, history):
    r = events(world, action="dispense.decided")
    assert seqs(r) == sorted(seqs(r), reverse=True)
    pharmacies = {i["subject"]["pharmacy_id"] for i in r.json["items"]}
    assert pharmacies == {str(world.pharmacy.id), str(world.other_pharmacy.id)}
    item = r.json["items"][0]
    assert set(item) >= {
        "seq",
        "recorded_at",
        "effective_at",
        "actor",
        "action",
        "outcome",
        "reasons",
        "program_version",
        "subject",
        "inputs_digest",
        "prev_hash",
        "hash",
    }
    assert item["actor"]["role"] == "pharmacist"


@pytest.mark.parametrize("token", ["prescriber_token", "pharmacist_token"])
@pytest.mark.parametrize(
    "path",
    ["/api/v1/audit/events", "/api/v1/audit/events/1", "/api/v1/audit/verify", "/api/v1/audit/export?format=csv"],
)
def test_pharmacists_and_prescribers_get_403(world, token, path):
    assert world.api.as_(getattr(world, token)).get(path).status_code == 403


def test_admin_may_read_the_log(world, history):
    assert events(world, token=world.admin).status_code == 200


@pytest.mark.parametrize(
    "name, value, expect",
    [
        ("action", lambda w, h: "authorization.decided", lambda w, h, i: i["action"] == "authorization.decided"),
        ("outcome", lambda w, h: "denied", lambda w, h, i: i["outcome"] == "denied"),
        (
            "reason",
            lambda w, h: "AUTHORIZATION_ALREADY_USED",
            lambda w, h, i: "AUTHORIZATION_ALREADY_USED" in [r["code"] for r in i["reasons"]],
        ),
        (
            "pharmacy_id",
            lambda w, h: w.other_pharmacy.id,
            lambda w, h, i: i["subject"].get("pharmacy_id") == str(w.other_pharmacy.id),
        ),
        (
            "prescriber_id",
            lambda w, h: w.prescriber.id,
            lambda w, h, i: i["subject"].get("prescriber_id") == str(w.prescriber.id),
        ),
        (
            "rems_patient_id",
            lambda w, h: h["stranger"]["rems_patient_id"],
            lambda w, h, i: i["subject"].get("rems_patient_id") == h["stranger"]["rems_patient_id"],
        ),
        (
            "since",
            lambda w, h: (NOW + timedelta(hours=12)).isoformat().replace("+", "%2B"),
            lambda w, h, i: i["effective_at"] >= (NOW + timedelta(hours=12)).isoformat(),
        ),
        (
            "until",
            lambda w, h: (NOW + timedelta(hours=1)).isoformat().replace("+", "%2B"),
            lambda w, h, i: i["effective_at"] < (NOW + timedelta(hours=1)).isoformat(),
        ),
    ],
)
def test_each_filter_returns_exactly_the_matching_entries(world, history, name, value, expect):
    with world.runtime.session() as s:
        everything = [json.loads(json.dumps(_as_item(e))) for e in s.exec(select(AuditEntry)).all()]
    wanted = sorted((i["seq"] for i in everything if expect(world, history, i)), reverse=True)
    assert wanted, "the history must contain matching entries"
    assert len(wanted) < len(everything), "and non-matching ones"
    got = seqs(events(world, limit=500, **{name: value(world, history)}))
    assert got == wanted


def _as_item(e: AuditEntry) -> dict:
    return {
        "seq": e.seq,
        "action": e.action,
        "outcome": e.outcome,
        "reasons": e.reasons,
        "subject": e.subject,
        "effective_at": e.effective_at.isoformat(),
    }


def test_filters_combine(world, history):
    got = events(world, action="dispense.decided", outcome="approved").json["items"]
    assert [i["seq"] for i in got] == [history["ok"]["audit_seq"]]


def test_cursor_pages_cover_everything_once(world, history):
    pages, cursor = [], None
    while True:
        r = events(world, limit=3, **({"cursor": cursor} if cursor else {}))
        pages.append(seqs(r))
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    flat = [s for p in pages for s in p]
    assert len(pages) >= 2 and flat == sorted(set(flat), reverse=True)
    assert set(flat) >= set(
        seqs(events(world, limit=500, until=(NOW + timedelta(days=2)).isoformat().replace("+", "%2B")))
    )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"outcome": "maybe"}, "outcome"),
        ({"reason": "NOT_A_CODE"}, "reason"),
        ({"since": "yesterday"}, "since"),
        ({"pharmacy_id": "x"}, "pharmacy_id"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_queries_are_422(world, params, field):
    r = events(world, **params)
    assert r.status_code == 422 and field in r.json["errors"], r.json


def test_single_entry_and_404(world, history):
    seq = history["denied"]["audit_seq"]
    r = world.api.as_(world.auditor).get(f"/api/v1/audit/events/{seq}")
    assert r.status_code == 200 and r.json["seq"] == seq and r.json["outcome"] == "denied"
    assert {x["code"] for x in r.json["reasons"]} >= {"PREGNANCY_TEST_MISSING"}
    assert world.api.as_(world.auditor).get("/api/v1/audit/events/999999").status_code == 404


def test_every_read_is_recorded(world, history):
    events(world, outcome="denied", limit=5)
    world.api.as_(world.auditor).get(f"/api/v1/audit/events/{history['ok']['audit_seq']}")
    world.api.as_(world.auditor).get("/api/v1/audit/verify")
    world.api.as_(world.auditor).get("/api/v1/audit/export?format=ndjson").get_data()
    with world.runtime.session() as s:
        reads = s.exec(select(AuditEntry).where(AuditEntry.action == "audit.read").order_by(AuditEntry.seq)).all()
    assert [r.details["operation"] for r in reads] == ["list", "get", "verify", "export"]
    assert all(r.actor_role == "auditor" for r in reads)
    assert (
        reads[0].details["filters"] == {"outcome": "denied"} and reads[1].details["seq"] == history["ok"]["audit_seq"]
    )


def test_verify_names_the_first_invalid_entry_and_checkpoints(world, history):
    r = world.api.as_(world.auditor).get("/api/v1/audit/verify")
    assert r.status_code == 200 and r.json["valid"] is True and r.json["mode"] == "full"
    inc = world.api.as_(world.auditor).get("/api/v1/audit/verify?incremental=true").json
    assert inc["valid"] and inc["mode"] == "incremental" and inc["started_after_seq"] == r.json["head_seq"]
    with world.runtime.session() as s:
        target = s.exec(
            select(AuditEntry.seq).where(AuditEntry.action == "patient.enrolled").order_by(AuditEntry.seq)
        ).first()
        tamper_with_audit(s)
        s.execute(text("UPDATE audit_entries SET outcome = 'denied' WHERE seq = :seq"), {"seq": target})
        s.commit()
    bad = world.api.as_(world.auditor).get("/api/v1/audit/verify").json
    assert bad["valid"] is False and bad["first_invalid_seq"] == target


def test_anchor_query_parameter(world, history):
    with world.runtime.session() as s:
        head = s.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    ok = world.api.as_(world.auditor).get(f"/api/v1/audit/verify?anchor={head.seq}:{head.hash}").json
    assert ok["valid"] and ok["anchor"]["matches"] is True
    wrong = world.api.as_(world.auditor).get(f"/api/v1/audit/verify?anchor={head.seq}:{'f' * 64}").json
    assert wrong["valid"] is False and wrong["first_invalid_seq"] == head.seq
    assert world.api.as_(world.auditor).get("/api/v1/audit/verify?anchor=12").status_code == 422


def test_export_round_trips_to_the_api_entries(world, history):
    api_items = {i["seq"]: i for i in events(world, limit=500, action="dispense.decided").json["items"]}
    nd = world.api.as_(world.auditor).get("/api/v1/audit/export?format=ndjson&action=dispense.decided")
    assert nd.status_code == 200 and nd.mimetype == "application/x-ndjson"
    exported = [json.loads(line) for line in nd.get_data(as_text=True).splitlines()]
    assert {i["seq"]: i for i in exported} == api_items
    csv_r = world.api.as_(world.auditor).get("/api/v1/audit/export?format=csv&action=dispense.decided")
    assert csv_r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(csv_r.get_data(as_text=True))))
    assert [int(r["seq"]) for r in rows] == sorted(api_items)
    for row in rows:
        original = api_items[int(row["seq"])]
        assert row["hash"] == original["hash"] and row["prev_hash"] == original["prev_hash"]
        assert json.loads(row["reasons"]) == original["reasons"] and json.loads(row["subject"]) == original["subject"]
        assert row["effective_at"] == original["effective_at"] and row["actor_role"] == original["actor"]["role"]


def test_export_needs_a_format(world):
    assert world.api.as_(world.auditor).get("/api/v1/audit/export").status_code == 422
    assert world.api.as_(world.auditor).get("/api/v1/audit/export?format=xml").status_code == 422


def test_no_entry_contains_a_patient_name_or_date_of_birth(world, history):
    body = world.api.as_(world.auditor).get("/api/v1/audit/export?format=ndjson").get_data(as_text=True)
    assert history["patient"]["rems_patient_id"] in body
    for patient in (ADULT_MALE, ADULT_FRP):
        for phi in (patient["first_name"], patient["last_name"], patient["date_of_birth"]):
            assert phi not in body
