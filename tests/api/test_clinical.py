"""CLINICAL_RULES.md through the API: treatment courses, lab results, advisories in Decisions,
the two refusals (R-CYCLE-3, R-ACK-1), the summary and charts, events, and no lab value in
logs, audit entries or events."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from rems_service.db.models import AuditEntry, DecisionRecord, OutboxEvent, PregnancyTestRecord
from rems_service.jobs.dispatch import background_for
from rems_service.services import decisions
from tests.helpers import ADULT_FRP, ADULT_MALE, NOW, authorize, dispense, enrolled, ready_patient, signature_ok
from tests.receiver import Receiver

DAY = timedelta(days=1)
#: A platelet count no other number of the scenario shares, to find it anywhere it leaks.
PLATELETS_PER_UL = 24321
COURSE = {
    "regimen": "combination",
    "start_date": (NOW - 3 * DAY).date().isoformat(),
    "dose_mg": 25,
    "thromboprophylaxis": "aspirin 81 mg",
}


def _api(world, token=None, at=NOW):
    return world.api.as_(token or world.prescriber_token).at(at)


def start_course(world, patient, at=NOW, **changes):
    r = _api(world, at=at).post(f"/api/v1/patients/{patient['id']}/courses", json={**COURSE, **changes})
    assert r.status_code == 201, r.json
    return r.json


def add_lab(world, patient, loinc, value, unit, at=NOW - DAY, now=None, **extra):
    """Record a lab collected ``at``, sent at ``now`` (default: NOW, or just after a later ``at``)."""
    sent = now or max(NOW, at + timedelta(minutes=5))
    return _api(world, at=sent).post(
        f"/api/v1/patients/{patient['id']}/labs",
        json={"loinc": loinc, "value": value, "unit": unit, "collected_at": at.isoformat(), **extra},
    )


def lab_id(world, patient, loinc, value, unit, at=NOW - DAY):
    r = add_lab(world, patient, loinc, value, unit, at)
    assert r.status_code == 201, r.json
    return r.json["id"]


def codes(body):
    return {(r["code"], r["rule"]) for r in body["reasons"]}


def warning(body, rule):
    found = [w for w in body.get("warnings", []) if w["rule"] == rule]
    assert found, f"no {rule} warning in {body.get('warnings')}"
    return found[0]


def replay(world, seq):
    return decisions.replay(world.runtime.uow(), world.runtime.program, seq)


def test_must_show_3_end_to_end(world, caplog):
    """A course at 25 mg combination; platelets 25 ×10³/µL → the next authorization is denied
    CLINICAL_ALERT_UNACKNOWLEDGED citing R-CBC-2 with the evidence; with an acknowledgement it is
    approved, the acknowledgement is in the audit entry and replays; the prescriber holds →
    dispense denied TREATMENT_ON_HOLD; resumed at 20 mg → approved."""
    caplog.set_level(logging.DEBUG)
    patient = ready_patient(world, ADULT_MALE)
    course = start_course(world, patient)
    assert course["status"] == "active" and course["cycle"] == {
        "number": 1,
        "day": 4,
        "dosing_day": True,
        "started": True,
    }
    lab_id(world, patient, "751-8", 2.1, "10*3/uL")
    platelets = lab_id(world, patient, "777-3", PLATELETS_PER_UL, "/uL")

    denied = authorize(world, patient, quantity=21)
    assert denied.status_code == 201 and denied.json["decision"] == "denied"
    assert codes(denied.json) == {("CLINICAL_ALERT_UNACKNOWLEDGED", "R-ACK-1")}
    assert "R-CBC-2" in denied.json["reasons"][0]["message"]
    cbc2 = warning(denied.json, "R-CBC-2")
    assert cbc2["severity"] == "critical"
    (evidence,) = cbc2["evidence"]
    assert {**evidence, "collected_at": datetime.fromisoformat(evidence["collected_at"])} == {
        "loinc": "777-3",
        "value": 24.321,
        "unit": "10*3/uL",
        "collected_at": NOW - DAY,
    }
    assert warning(denied.json, "R-CYCLE-1")["message"].startswith("Cycle 1, day 4 of 28")

    ack = {"rule": "R-CBC-2", "reason": "Platelets reviewed with the patient; transfusion planned."}
    approved = authorize(world, patient, quantity=21, acknowledgements=[ack])
    assert approved.json["decision"] == "approved", approved.json
    assert warning(approved.json, "R-CBC-2")["severity"] == "critical"
    with world.runtime.session() as s:
        entry = s.get(AuditEntry, approved.json["audit_seq"])
        (recorded_ack,) = entry.details["acknowledgements"]
    assert recorded_ack["rule"] == "R-CBC-2" and recorded_ack["reason"] == ack["reason"]
    assert recorded_ack["by_role"] == "prescriber" and recorded_ack["at"]
    assert {w["rule"] for w in entry.details["warnings"]} >= {"R-CBC-2", "R-CYCLE-1"}
    for seq in (denied.json["audit_seq"], approved.json["audit_seq"]):
        assert replay(world, seq).matches

    held = _api(world).post(
        f"/api/v1/courses/{course['id']}/hold", json={"reason_code": "hematologic", "lab_result_ids": [platelets]}
    )
    assert held.status_code == 200 and held.json["status"] == "on_hold", held.json
    number = approved.json["authorization_number"]
    pharmacist_ack = {**ack, "prescriber_contacted_at": (NOW - DAY).isoformat()}
    on_hold = dispense(
        world,
        number,
        patient["rems_patient_id"],
        quantity=21,
        at=NOW + timedelta(hours=1),
        acknowledgements=[pharmacist_ack],
    )
    assert on_hold.json["decision"] == "denied"
    assert codes(on_hold.json) == {("TREATMENT_ON_HOLD", "R-CYCLE-3")}
    assert "hematologic" in on_hold.json["reasons"][0]["message"]

    lab_id(world, patient, "777-3", 95, "10*3/uL", at=NOW + timedelta(hours=2))
    resumed = _api(world, at=NOW + timedelta(hours=3)).post(
        f"/api/v1/courses/{course['id']}/resume", json={"dose_mg": 20, "reason_code": "hematologic"}
    )
    assert resumed.status_code == 200 and resumed.json["status"] == "active" and resumed.json["dose_mg"] == 20
    ok = dispense(world, number, patient["rems_patient_id"], quantity=21, at=NOW + timedelta(hours=4))
    assert ok.json["decision"] == "approved", ok.json
    assert warning(ok.json, "R-DOSE-1")["severity"] == "caution"  # 25 mg capsules, course now 20 mg
    assert not [w for w in ok.json["warnings"] if w["severity"] == "critical"]
    for body in (on_hold.json, ok.json):
        assert replay(world, body["audit_seq"]).matches

    events = [e["event"] for e in resumed.json["events"]]
    assert events == ["treatment.started", "treatment.held", "treatment.resumed"]
    assert resumed.json["events"][1]["lab_result_ids"] == [platelets]

    # No lab value anywhere but the patient's record and the decision snapshot.
    with world.runtime.session() as s:
        audit = [e.model_dump(mode="json") for e in s.exec(select(AuditEntry)).all()]
        outbox = [e.payload for e in s.exec(select(OutboxEvent)).all()]
        types = [e.type for e in s.exec(select(OutboxEvent)).all()]
    for text in (json.dumps(audit), json.dumps(outbox), caplog.text):
        assert str(PLATELETS_PER_UL) not in text and "24.321" not in text
    for t in ("treatment.started", "treatment.held", "treatment.resumed", "lab.recorded", "lab.critical"):
        assert t in types
    critical = [p for p, t in zip(outbox, types, strict=True) if t == "lab.critical"]
    assert critical == [
        {
            "patient_id": patient["id"],
            "rems_patient_id": patient["rems_patient_id"],
            "prescriber_id": str(world.prescriber.id),
            "lab_id": platelets,
            "rules": ["R-CBC-2"],
        }
    ]


def test_a_patient_without_a_course_has_no_warnings_key(world):
    patient = ready_patient(world, ADULT_MALE)
    r = authorize(world, patient)
    assert r.json["decision"] == "approved" and "warnings" not in r.json
    with world.runtime.session() as s:
        entry = s.get(AuditEntry, r.json["audit_seq"])
    assert "warnings" not in entry.details and "acknowledgements" not in entry.details


def test_course_life_cycle_and_its_conflicts(world):
    patient = ready_patient(world, ADULT_MALE)
    course = start_course(world, patient)
    again = _api(world).post(f"/api/v1/patients/{patient['id']}/courses", json=COURSE)
    assert again.status_code == 409
    path = f"/api/v1/courses/{course['id']}"
    assert _api(world).post(path + "/resume", json={}).status_code == 409  # not on hold
    changed = _api(world).post(path + "/change-dose", json={"dose_mg": 15, "reason_code": "renal"})
    assert changed.status_code == 200 and changed.json["dose_mg"] == 15
    stopped = _api(world).post(path + "/stop", json={"reason_code": "patient_request"})
    assert stopped.status_code == 200 and stopped.json["status"] == "stopped"
    assert _api(world).post(path + "/hold", json={"reason_code": "other"}).status_code == 409
    # A stopped course refuses (R-CYCLE-3) until a new one starts.
    r = authorize(world, patient, quantity=21, strength_mg=15)
    assert codes(r.json) == {("TREATMENT_ON_HOLD", "R-CYCLE-3")}
    start_course(world, patient, dose_mg=15)
    assert authorize(world, patient, quantity=21, strength_mg=15).json["decision"] == "approved"
    listed = _api(world).get(f"/api/v1/patients/{patient['id']}/courses")
    assert [c["status"] for c in listed.json["items"]] == ["active", "stopped"]


def test_who_may_read_a_course(world):
    patient = ready_patient(world, ADULT_MALE)
    course = start_course(world, patient)
    path = f"/api/v1/courses/{course['id']}"
    assert _api(world).get(path).status_code == 200
    assert _api(world, world.admin).get(path).status_code == 200
    assert _api(world, world.other_prescriber_token).get(path).status_code == 404
    assert _api(world, world.pharmacist_token).get(path).status_code == 404
    number = authorize(world, patient, quantity=21).json["authorization_number"]
    assert _api(world, world.pharmacist_token).get(path + f"?authorization_number={number}").status_code == 200
    other = ready_patient(world, {**ADULT_MALE, "first_name": "Other"})
    other_number = authorize(world, other).json["authorization_number"]
    assert _api(world, world.pharmacist_token).get(path + f"?authorization_number={other_number}").status_code == 404
    # Not the prescriber's role to change another's patient's course; pharmacists never change it.
    assert (
        _api(world, world.other_prescriber_token).post(path + "/hold", json={"reason_code": "other"}).status_code == 404
    )
    assert _api(world, world.pharmacist_token).post(path + "/hold", json={"reason_code": "other"}).status_code == 403


def test_labs_are_refused_naming_the_field(world):
    patient = ready_patient(world, ADULT_MALE)
    for loinc, value, unit, at, field in (
        ("1234-5", 1, "g/dL", NOW - DAY, "loinc"),
        ("777-3", 1, "g/dL", NOW - DAY, "unit"),
        ("33358-3", 1, "furlongs", NOW - DAY, "unit"),
        ("777-3", 100, "10*3/uL", NOW + DAY, "collected_at"),
    ):
        r = add_lab(world, patient, loinc, value, unit, at, now=NOW)
        assert r.status_code == 422 and field in r.json["errors"], r.json
    ok = add_lab(world, patient, "33358-3", 12, "g/L", reference_low=0, reference_high=0)
    assert ok.status_code == 201 and ok.json["canonical_value"] == 1.2 and ok.json["canonical_unit"] == "g/dL"
    listed = _api(world).get(f"/api/v1/patients/{patient['id']}/labs?loinc=33358-3")
    assert [x["id"] for x in listed.json["items"]] == [ok.json["id"]]


def test_a_pregnancy_loinc_result_is_the_r_preg_test(world):
    """A pregnancy test sent as LOINC is stored as the pregnancy test R-PREG reads, and a
    positive halts the patient like the pregnancy-test endpoint."""
    patient = enrolled(world, ADULT_FRP)
    r = add_lab(world, patient, "2106-3", "negative", None, at=NOW - 12 * DAY, sensitivity_miu_ml=25)
    assert r.status_code == 201 and r.json["kind"] == "pregnancy", r.json
    insensitive = add_lab(world, patient, "2106-3", "negative", None, at=NOW - DAY, sensitivity_miu_ml=100)
    assert insensitive.status_code == 422 and "sensitivity_miu_ml" in insensitive.json["errors"]
    r2 = add_lab(world, patient, "19080-1", 2, "m[IU]/mL", at=NOW - timedelta(hours=2), sensitivity_miu_ml=25)
    assert r2.status_code == 201
    with world.runtime.session() as s:
        pid = uuid.UUID(patient["id"])
        tests = s.exec(select(PregnancyTestRecord).where(PregnancyTestRecord.patient_id == pid)).all()
    assert sorted(t.result.value for t in tests) == ["negative", "negative"]
    detail = _api(world).get(f"/api/v1/patients/{patient['id']}")
    assert detail.json["pregnancy_testing"]["state"] != "missing"
    positive = add_lab(world, patient, "2118-8", "positive", None, at=NOW - timedelta(hours=1), sensitivity_miu_ml=25)
    assert positive.status_code == 201
    assert _api(world).get(f"/api/v1/patients/{patient['id']}").json["status"] == "halted"


def test_summary_and_charts(world):
    patient = ready_patient(world, ADULT_MALE)
    course = start_course(world, patient, at=NOW - 40 * DAY, start_date=(NOW - 40 * DAY).date().isoformat())
    for days_ago, platelets, anc in ((35, 180, 2.0), (20, 40, 0.9), (3, 120, 1.8)):
        lab_id(world, patient, "777-3", platelets, "10*3/uL", at=NOW - days_ago * DAY)
        lab_id(world, patient, "751-8", anc * 1000, "/uL", at=NOW - days_ago * DAY)
    for days_ago, protein in ((45, 3.0), (10, 1.4), (2, 1.3)):
        lab_id(world, patient, "33358-3", protein, "g/dL", at=NOW - days_ago * DAY)
    _api(world, at=NOW - 19 * DAY).post(f"/api/v1/courses/{course['id']}/hold", json={"reason_code": "hematologic"})
    _api(world, at=NOW - 12 * DAY).post(f"/api/v1/courses/{course['id']}/resume", json={"dose_mg": 20})
    s = _api(world).get(f"/api/v1/patients/{patient['id']}/treatment")
    assert s.status_code == 200, s.json
    body = s.json
    assert body["course"]["cycle"]["number"] == 2 and body["course"]["cycle"]["day"] == 6  # 33 treatment days
    assert [h["event"] for h in body["holds"]] == ["treatment.held", "treatment.resumed"]
    assert [d["to_dose_mg"] for d in body["dose_history"]] == [25, 20]
    assert [p["value"] for p in body["cbc"]["series"]["anc"]] == [2.0, 0.9, 1.8]
    assert body["cbc"]["thresholds"]["platelets_hold_below"] == 30
    trend = body["m_protein"]["serum_trend"]
    assert trend["response_category"] == "PR" and trend["response_confirmed"] is True
    assert all(
        day["date"] < (NOW - 19 * DAY).date().isoformat() or day["date"] >= (NOW - 12 * DAY).date().isoformat()
        for cycle in body["calendar"]
        for day in cycle["days"]
    )
    for chart in ("cbc.svg", "m-protein.svg"):
        r = _api(world).get(f"/api/v1/patients/{patient['id']}/charts/{chart}")
        assert r.status_code == 200 and r.mimetype == "image/svg+xml"
        svg = r.get_data(as_text=True)
        assert (
            svg.startswith("<svg")
            and "<script" not in svg
            and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
        )
    assert "response PR" in _api(world).get(f"/api/v1/patients/{patient['id']}/charts/m-protein.svg").get_data(
        as_text=True
    )
    assert (
        _api(world, world.other_prescriber_token).get(f"/api/v1/patients/{patient['id']}/treatment").status_code == 404
    )


def test_renal_advice_from_creatinine_and_the_recorded_weight(world):
    """R-RENAL-1 through the API: Cockcroft-Gault from serum creatinine (µmol/L converted to
    mg/dL), the course's weight, and the age in whole years; the snapshot never holds the
    date of birth."""
    patient = ready_patient(world, ADULT_MALE)  # born 1960-04-02: 66 on 2026-06-15
    start_course(world, patient, weight_kg=60)
    lab_id(world, patient, "751-8", 2.0, "10*3/uL")
    lab_id(world, patient, "777-3", 150, "10*3/uL")
    lab_id(world, patient, "2160-0", 132.6, "umol/L")  # 1.5 mg/dL: (140-66)*60/(72*1.5) = 41.1 mL/min
    r = authorize(world, patient, quantity=21)
    assert r.json["decision"] == "approved"
    renal = warning(r.json, "R-RENAL-1")
    assert "Cockcroft-Gault" in renal["message"] and renal["evidence"][0]["loinc"] == "2160-0"
    with world.runtime.session() as s:
        snapshot = s.exec(select(DecisionRecord).where(DecisionRecord.audit_seq == r.json["audit_seq"])).one().snapshot
    assert snapshot["clinical"]["age_years"] == 66 and snapshot["clinical"]["female"] is False
    assert "1960" not in json.dumps(snapshot)
    assert replay(world, r.json["audit_seq"]).matches


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_clinical_events_reach_the_prescriber_s_webhook_without_values(world, make_app, receiver):
    """treatment.held, treatment.resumed, treatment.dose_changed, lab.recorded and lab.critical go
    through the outbox to the subscribed prescriber's webhook, signed, with ids and no lab value."""
    app = make_app(RELAY_AFTER_REQUEST=True, WEBHOOK_ALLOW_LOOPBACK=True)  # the receiver is on loopback
    world.api.client = app.test_client()
    world.runtime = app.extensions["rems"]
    events = ["treatment.held", "treatment.resumed", "treatment.dose_changed", "lab.recorded", "lab.critical"]
    r = world.api.as_(world.prescriber_token).post("/api/v1/webhooks", json={"url": receiver.url, "events": events})
    assert r.status_code == 201, r.json
    secret = r.json["secret"]
    patient = ready_patient(world, ADULT_MALE)
    course = start_course(world, patient)
    lab_id(world, patient, "777-3", PLATELETS_PER_UL, "/uL")
    path = f"/api/v1/courses/{course['id']}"
    assert _api(world).post(path + "/hold", json={"reason_code": "hematologic"}).status_code == 200
    assert _api(world).post(path + "/resume", json={"dose_mg": 20}).status_code == 200
    assert _api(world).post(path + "/change-dose", json={"dose_mg": 15, "reason_code": "other"}).status_code == 200
    assert background_for(world.runtime).wait_idle(30)  # deliveries run off the request path
    assert receiver.wait_for(5)
    got = sorted(x.body["type"] for x in receiver.received)
    assert got == sorted(events)
    for delivery in receiver.received:
        assert signature_ok(secret, delivery)
        raw = delivery.raw.decode()
        assert str(PLATELETS_PER_UL) not in raw and "24.321" not in raw and "Quinlan" not in raw
        assert delivery.body["data"]["prescriber_id"] == str(world.prescriber.id)


def test_the_openapi_document_describes_the_clinical_layer(client):
    spec = client.get("/api/v1/openapi.json").json
    for path, method in (
        ("/api/v1/patients/{patient_id}/courses", "post"),
        ("/api/v1/patients/{patient_id}/courses", "get"),
        ("/api/v1/courses/{course_id}", "get"),
        ("/api/v1/courses/{course_id}/hold", "post"),
        ("/api/v1/courses/{course_id}/resume", "post"),
        ("/api/v1/courses/{course_id}/change-dose", "post"),
        ("/api/v1/courses/{course_id}/stop", "post"),
        ("/api/v1/patients/{patient_id}/labs", "post"),
        ("/api/v1/patients/{patient_id}/labs", "get"),
        ("/api/v1/patients/{patient_id}/treatment", "get"),
        ("/api/v1/patients/{patient_id}/charts/cbc.svg", "get"),
        ("/api/v1/patients/{patient_id}/charts/m-protein.svg", "get"),
    ):
        operation = spec["paths"][path][method]
        assert operation["security"] and "404" in operation["responses"]
    schemas = spec["components"]["schemas"]
    assert "warnings" in schemas["Decision"]["properties"]
    assert "acknowledgements" in schemas["AuthorizationCreate"]["properties"]
    assert "acknowledgements" in schemas["DispenseCreate"]["properties"]
    assert "422" in spec["paths"]["/api/v1/patients/{patient_id}/labs"]["post"]["responses"]


def test_a_course_start_date_far_from_today_is_refused(world):
    patient = ready_patient(world, ADULT_MALE)
    for start in ("0001-01-01", "2040-01-01"):
        r = _api(world).post(f"/api/v1/patients/{patient['id']}/courses", json={**COURSE, "start_date": start})
        assert r.status_code == 422 and "start_date" in r.json["errors"], r.json


def test_a_hold_after_the_confirmation_stops_the_hand_over(world):
    """R-CYCLE-3 holds at hand-over too: a course put on hold after the dispense was confirmed
    refuses the hand-over (409 TREATMENT_ON_HOLD, nothing recorded); resumed, it goes ahead."""
    patient = ready_patient(world, ADULT_MALE)
    course = start_course(world, patient)
    lab_id(world, patient, "751-8", 2.1, "10*3/uL")
    lab_id(world, patient, "777-3", 150, "10*3/uL")
    auth = authorize(world, patient, quantity=21)
    assert auth.json["decision"] == "approved", auth.json
    confirmed = dispense(
        world, auth.json["authorization_number"], patient["rems_patient_id"], quantity=21, at=NOW + timedelta(hours=1)
    )
    assert confirmed.json["decision"] == "approved", confirmed.json
    number = confirmed.json["confirmation_number"]
    path = f"/api/v1/courses/{course['id']}"
    assert (
        _api(world, at=NOW + timedelta(hours=2)).post(path + "/hold", json={"reason_code": "other"}).status_code == 200
    )
    pharmacy = world.api.as_(world.pharmacist_token)
    before = len(pharmacy.at(NOW + timedelta(hours=3)).get("/api/v1/dispenses").json["items"])
    refused = pharmacy.at(NOW + timedelta(hours=3)).post(f"/api/v1/dispenses/{number}/complete")
    assert refused.status_code == 409, refused.json
    assert refused.json["errors"]["confirmation_number"] == ["TREATMENT_ON_HOLD"]
    assert "R-CYCLE-3" in refused.json["message"]
    after = pharmacy.at(NOW + timedelta(hours=3)).get(f"/api/v1/dispenses/{number}").json
    assert after["status"] == "confirmed"  # nothing recorded
    assert len(pharmacy.at(NOW + timedelta(hours=3)).get("/api/v1/dispenses").json["items"]) == before
    resumed = _api(world, at=NOW + timedelta(hours=4)).post(path + "/resume", json={"reason_code": "other"})
    assert resumed.status_code == 200, resumed.json
    done = pharmacy.at(NOW + timedelta(hours=5)).post(f"/api/v1/dispenses/{number}/complete")
    assert done.status_code == 200 and done.json["status"] == "dispensed", done.json
