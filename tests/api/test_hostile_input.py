"""Issue 18 items 7 and 9: no input is a 500, and no unsafe text reaches a database or a log.

Each input the fault injector sent answers a 4xx naming the field, changes
nothing, and (on PostgreSQL too) never reaches SQL.
"""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import urlencode

import pytest
from sqlalchemy.exc import DBAPIError

from tests.helpers import (
    ADULT_FRP,
    ADULT_MALE,
    AUTH_BODY,
    COUNSELED,
    NOW,
    audit_count,
    authorize,
    ready_patient,
)

JSON = {"Content-Type": "application/json"}


def _post_raw(world, token, path, raw: bytes, at=NOW):
    return world.api.as_(token).at(at).post(path, data=raw, headers=JSON)


@pytest.mark.parametrize(
    "raw_value, code_point",
    [('"Zed\\u0000"', "U+0000"), ('"\\ud800"', "U+D800"), ('"Z\\udfffed"', "U+DFFF"), ('"Ze\\u001bd"', "U+001B")],
)
def test_control_characters_and_lone_surrogates_in_a_name_are_422_naming_the_field(world, raw_value, code_point):
    body = json.dumps({**ADULT_MALE, "first_name": "PLACEHOLDER"}).replace('"PLACEHOLDER"', raw_value)
    before = audit_count(world.runtime)
    r = _post_raw(world, world.prescriber_token, "/api/v1/patients", body.encode())
    assert r.status_code == 422, r.get_data(as_text=True)
    assert list(r.json["errors"]) == ["first_name"] and code_point in r.json["errors"]["first_name"][0]
    assert audit_count(world.runtime) == before


def test_nul_in_nested_fields_urls_and_reference_numbers(world):
    patient = ready_patient(world)
    pharmacist = world.api.as_(world.pharmacist_token).at(NOW)
    r = pharmacist.post(
        "/api/v1/dispenses",
        json={
            "authorization_number": "A\x00B",
            "rems_patient_id": patient["rems_patient_id"],
            "days_supply": 28,
            "quantity": 28,
            "counseling": COUNSELED,
        },
    )
    assert r.status_code == 422 and list(r.json["errors"]) == ["authorization_number"]
    r = world.api.as_(world.prescriber_token).post(
        "/api/v1/webhooks", json={"url": "https://example.org/\x00hook", "events": ["authorization.issued"]}
    )
    assert r.status_code == 422 and list(r.json["errors"]) == ["url"]
    r = world.api.as_(world.prescriber_token).post(
        "/api/v1/authorizations",
        json={**AUTH_BODY, "patient_id": patient["id"], "prescriber_survey": {"counseled_on_risks\x00": True}},
    )
    assert r.status_code == 422 and "prescriber_survey.counseled_on_risks\\u0000" in r.json["errors"]
    # In a path segment and in a query string.
    r = pharmacist.get("/api/v1/authorizations/A%00B")
    assert r.status_code == 422 and list(r.json["errors"]) == ["number"]
    r = world.api.as_(world.admin).get("/api/v1/audit/events?authorization_number=%00")
    assert r.status_code == 422 and list(r.json["errors"]) == ["authorization_number"]


@pytest.mark.parametrize("query", ["action=%00", "rems_patient_id=RP%00", "confirmation_number=C%1F"])
def test_exports_validate_before_streaming(world, query):
    r = world.api.as_(world.admin).get(f"/api/v1/audit/export?format=csv&{query}")
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert r.mimetype == "application/json" and r.json["errors"]


def test_fifty_thousand_deep_json_is_a_400(world):
    for depth in (50_000, 100):
        raw = b"[" * depth + b"]" * depth
        r = _post_raw(world, world.prescriber_token, "/api/v1/patients", raw)
        assert r.status_code == 400 and "deeper" in r.json["message"], r.json
        raw = b'{"a":' * depth + b"1" + b"}" * depth
        assert _post_raw(world, world.prescriber_token, "/api/v1/patients", raw).status_code == 400


def test_duplicate_json_keys_are_a_400_naming_the_key(world):
    body = json.dumps(ADULT_MALE)[:-1] + ', "first_name": "Other"}'
    r = _post_raw(world, world.prescriber_token, "/api/v1/patients", body.encode())
    assert r.status_code == 400 and list(r.json["errors"]) == ["first_name"]
    nested = b'{"prescriber_survey": {"counseled_on_risks": true, "counseled_on_risks": false}}'
    assert _post_raw(world, world.prescriber_token, "/api/v1/authorizations", nested).status_code == 400


def test_date_of_birth_at_the_end_of_the_calendar(world):
    r = (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post("/api/v1/patients", json={**ADULT_MALE, "date_of_birth": "9999-12-31"})
    )
    assert r.status_code == 422 and "date_of_birth" in r.json["errors"]


def test_audit_seq_beyond_bigint_is_a_404(world):
    for seq in (2**63, 10**20, 2**63 - 1):
        r = world.api.as_(world.auditor).get(f"/api/v1/audit/events/{seq}")
        assert r.status_code == 404, r.get_data(as_text=True)


def test_an_audit_cursor_beyond_bigint_is_a_422(world):
    for before in (2**63, 10**30):
        cursor = base64.urlsafe_b64encode(json.dumps({"before": before}).encode()).decode().rstrip("=")
        r = world.api.as_(world.auditor).get(f"/api/v1/audit/events?cursor={cursor}")
        assert r.status_code == 422 and list(r.json["errors"]) == ["cursor"], r.get_data(as_text=True)


@pytest.mark.parametrize(
    "clock, status",
    [
        ("9999-12-31T23:59:59+00:00", 422),  # the authorization's window passes year 9999
        ("9999-12-20T00:00:00+00:00", 422),
        ("0001-01-01T00:00:00+05:00", 400),  # before the calendar's first instant in UTC
        ("0001-01-01T00:00:00+00:00", 422),  # before the program's first version (was a 503)
        ("1803-11-09T14:07:39+20:45", 422),
        ("9999-12-31T23:59:59-05:00", 400),  # after its last
    ],
)
def test_clock_at_the_calendar_edges_on_a_decision(world, clock, status):
    patient = ready_patient(world)
    before = audit_count(world.runtime)
    r = world.api.as_(world.prescriber_token).post(
        "/api/v1/authorizations", json={**AUTH_BODY, "patient_id": patient["id"]}, headers={"X-Rems-Now": clock}
    )
    assert r.status_code == status, r.get_data(as_text=True)
    assert "X-Rems-Now" in r.json["errors"]
    assert audit_count(world.runtime) == before  # nothing decided, nothing recorded
    assert authorize(world, patient).status_code == 201  # and the patient is untouched


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_instants_without_a_utc_equivalent_are_422_naming_the_field(world, instant):
    patient = ready_patient(world, ADULT_FRP)
    prescriber = world.api.as_(world.prescriber_token).at(NOW)
    r = prescriber.post(
        f"/api/v1/patients/{patient['id']}/pregnancy-tests",
        json={"collected_at": instant, "result": "negative", "sensitivity_miu_ml": 25},
    )
    assert r.status_code == 422 and "collected_at" in r.json["errors"], r.get_data(as_text=True)
    r = world.api.as_(world.admin).post(
        "/api/v1/users",
        json={
            "name": "x",
            "role": "pharmacist",
            "pharmacy_id": str(world.pharmacy.id),
            "training_completed_at": instant,
        },
    )
    assert r.status_code == 422 and "training_completed_at" in r.json["errors"]
    query = urlencode({"since": instant})
    assert world.api.as_(world.auditor).get(f"/api/v1/audit/events?{query}").status_code == 422
    query = urlencode({"survey_due_before": instant})
    assert world.api.as_(world.prescriber_token).get(f"/api/v1/patients?{query}").status_code == 422


def test_leading_and_trailing_spaces_are_not_blank(world):
    api = world.api.as_(world.prescriber_token).at(NOW)
    r = api.post("/api/v1/patients", json={**ADULT_MALE, "first_name": " Zed", "last_name": "Quinlan "})
    assert r.status_code == 201, r.json
    r = api.post("/api/v1/patients", json={**ADULT_MALE, "first_name": " \t "})
    assert r.status_code == 422 and r.json["errors"]["first_name"] == ["Must not be blank."]


def test_a_database_error_logs_neither_parameters_nor_the_drivers_text(world, monkeypatch, caplog):
    """Item 7: the log line of a 500 from the database names the error class and SQLSTATE only."""
    from rems_service.services import patients

    def failing(*_args, **_kwargs):
        orig = Exception('value "Quinlan" for first_name; DETAIL: Key (dob)=(1960-04-02)')
        raise DBAPIError("INSERT INTO patients VALUES (%(first_name)s)", {"first_name": "Quinlan"}, orig)

    monkeypatch.setattr(patients, "enroll", failing)
    world.runtime.engine  # noqa: B018
    world.api.client.application.config["PROPAGATE_EXCEPTIONS"] = False
    with caplog.at_level(logging.DEBUG):
        r = world.api.as_(world.prescriber_token).at(NOW).post("/api/v1/patients", json=ADULT_MALE)
    assert r.status_code == 500
    logged = "\n".join(f"{rec.getMessage()} {vars(rec)} {rec.exc_text or ''}" for rec in caplog.records)
    assert "database error" in logged
    assert "Quinlan" not in logged and "1960-04-02" not in logged
