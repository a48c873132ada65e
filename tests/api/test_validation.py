"""Validation answers say what to send: field messages, a body that is not JSON (415), malformed JSON (400).

API.md, Conventions: JSON in and out; 400 malformed JSON; 422 validation, with
``errors`` naming each field. A message names the expected form and an example
("Needs a date as YYYY-MM-DD, e.g. 2026-11-26."), never the library's wording.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from marshmallow import fields

from rems_service.schemas.common import RequestSchema
from tests.helpers import ADULT_FRP, ADULT_MALE, AUTH_BODY, NOW, audit_count, authorize, enroll, enrolled

#: The library's wording for a value of the wrong type, which no answer may carry any more.
LIBRARY_WORDING = ("Not a valid", "Missing data for required field", "Field may not be null", "Invalid type")


def _errors(r: Any) -> dict[str, list[str]]:
    assert r.status_code == 422, r.json
    assert r.json["code"] == 422 and r.json["status"] == "Unprocessable Entity"
    for messages in r.json["errors"].values():
        assert not any(word in message for message in messages for word in LIBRARY_WORDING), r.json
    return r.json["errors"]


def _one(r: Any, field: str) -> str:
    errors = _errors(r)
    assert field in errors, errors
    assert field in r.json["message"]  # the summary names the field too
    return " ".join(errors[field])


@pytest.mark.parametrize("value", ["2026-11-26T10:00:00", "2026-11-26 10:00", "tomorrow", "2026-11-26"])
def test_a_datetime_without_an_offset_names_the_offset_and_an_example(world, value):
    pid = enrolled(world)["id"]
    r = (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post(
            f"/api/v1/patients/{pid}/pregnancy-tests",
            json={"collected_at": value, "result": "negative", "sensitivity_miu_ml": 25},
        )
    )
    message = _one(r, "collected_at")
    assert message == "Needs a date and time with a UTC offset, e.g. 2026-11-26T10:00:00Z."


@pytest.mark.parametrize("value", ["02/04/1960", "1960-4-2T00:00:00Z", "1960-13-01", 19600402])
def test_a_bad_date_names_the_format(world, value):
    r = enroll(world, {**ADULT_MALE, "date_of_birth": value})
    assert _one(r, "date_of_birth") == "Needs a date as YYYY-MM-DD, e.g. 2026-11-26."


@pytest.mark.parametrize(
    "changes, field, expected",
    [
        ({"patient_id": "patient-1"}, "patient_id", "Needs a UUID, e.g. "),
        ({"days_supply": "28"}, "days_supply", "Needs a whole number (a JSON number, not a string), e.g. 28."),
        ({"days_supply": 28.5}, "days_supply", "Needs a whole number"),
        ({"quantity": 0}, "quantity", "Needs a value from 1 to 1000."),
        ({"strength_mg": 3}, "strength_mg", "Needs one of: 2.5, 5.0, 10.0, 15.0, 20.0, 25.0."),
        ({"prescriber_survey": ["yes"]}, "prescriber_survey", "Needs a JSON object."),
        (
            {"prescriber_survey": {"counseled_on_risks": "true"}},
            "prescriber_survey.counseled_on_risks",
            "Needs true or false (a JSON boolean, not a string or a number).",
        ),
        ({"prescriber_survey": {}}, "prescriber_survey.counseled_on_risks", "Required: send true or false"),
        ({"days_supply": None}, "days_supply", "Must not be null: send a whole number"),
        ({"status": "approved"}, "status", "Unknown field: this request does not accept it"),
    ],
)
def test_each_kind_of_field_says_what_to_send(world, changes, field, expected):
    before = audit_count(world.runtime)
    body = {**AUTH_BODY, "patient_id": str(uuid.uuid4()), **changes}
    r = world.api.as_(world.prescriber_token).at(NOW).post("/api/v1/authorizations", json=body)
    assert _one(r, field).startswith(expected)
    assert audit_count(world.runtime) == before


@pytest.mark.parametrize(
    "changes, field, expected",
    [
        ({"risk_category": "ADULT"}, "risk_category", "Needs one of: FRP_ADULT, FRP_CHILD, FNRP_ADULT"),
        ({"risk_category": None}, "risk_category", "Must not be null: send one of: FRP_ADULT"),
        ({"first_name": "x" * 101}, "first_name", "Needs 1 to 100 characters."),
        ({"first_name": ""}, "first_name", "Needs 1 to 100 characters. Must not be blank."),
        ({"first_name": 7}, "first_name", "Needs text (a JSON string)."),
        ({"ppaf_signed": 1}, "ppaf_signed", "Needs true or false (a JSON boolean, not a string or a number)."),
        ({"menstrual_cycle": "monthly"}, "menstrual_cycle", "Needs one of: regular, irregular."),
    ],
)
def test_enrolment_fields_say_what_to_send(world, changes, field, expected):
    r = enroll(world, {**ADULT_FRP, **changes})
    assert _one(r, field).startswith(expected)


def test_a_missing_required_field_says_what_it_needs(world):
    body = {k: v for k, v in ADULT_MALE.items() if k not in ("date_of_birth", "last_name")}
    errors = _errors(enroll(world, body))
    assert errors["date_of_birth"] == ["Required: send a date as YYYY-MM-DD, e.g. 2026-11-26."]
    assert errors["last_name"] == ["Required: send text (a JSON string)."]


def test_list_items_say_what_to_send(world):
    r = world.api.as_(world.admin).post(
        "/api/v1/webhooks", json={"url": "https://example.org/hook", "events": ["authorization.issued", "nope"]}
    )
    errors = _errors(r)
    assert list(errors) == ["events.1"]
    assert errors["events.1"][0].startswith("Needs one of: authorization.issued, ")


def test_query_parameters_say_what_to_send(world):
    r = world.api.as_(world.auditor).get(f"/api/v1/audit/events?limit=0&pharmacy_id=pharmacy-1&x={uuid.uuid4()}")
    errors = _errors(r)
    assert errors["limit"][0].startswith("Needs a value from 1 to ")
    assert errors["pharmacy_id"] == ["Needs a UUID, e.g. 3fa85f64-5717-4562-b3fc-2c963f66afa6."]
    assert errors["x"][0].startswith("Unknown field")


def _argument_schemas(app: Any) -> list[tuple[str, Any]]:
    """(endpoint, schema) of every ``@blp.arguments`` schema of every registered view."""
    found = []
    for endpoint, view in app.view_functions.items():
        for parameter in getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", []):
            schema = parameter["schema"]
            found.append((endpoint, schema() if isinstance(schema, type) else schema))
    return found


def _fields(schema: Any, seen: set[int]) -> list[tuple[str, fields.Field]]:
    if id(schema) in seen:
        return []
    seen.add(id(schema))
    found = []
    for name, field in schema.fields.items():
        stack = [field]
        while stack:
            current = stack.pop()
            found.append((f"{type(schema).__name__}.{name}", current))
            if isinstance(current, fields.Nested):
                found.extend(_fields(current.schema, seen))
            if isinstance(current, fields.List):
                stack.append(current.inner)
    return found


def test_every_request_schema_of_every_view_speaks_in_what_to_send(app):
    """Every body and query schema (of any endpoint, present or added later) is a closed
    ``RequestSchema`` whose fields carry no library message for a missing or mistyped value."""
    schemas = _argument_schemas(app)
    assert len(schemas) > 25
    checked = 0
    for endpoint, schema in schemas:
        assert isinstance(schema, RequestSchema), endpoint
        for name, field in _fields(schema, set()):
            for key in ("required", "null", "invalid", "invalid_uuid", "invalid_awareness", "type", "unknown"):
                message = field.error_messages.get(key)
                if isinstance(message, str):
                    assert not any(word in message for word in LIBRARY_WORDING), (endpoint, name, key, message)
                    checked += 1
    assert checked > 200


# --- The body must be JSON -----------------------------------------------------------------

NEW_PRESCRIBER = '{"npi": "1679576722", "first_name": "Ada", "last_name": "Lovelace"}'


def _prescriber_count(world: Any) -> int:
    from rems_service.db.models import Prescriber

    with world.runtime.uow() as uow:
        return len(uow.session.query(Prescriber).all())


def _unchanged(world: Any) -> Any:
    counts = (audit_count(world.runtime), _prescriber_count(world))
    return lambda: (audit_count(world.runtime), _prescriber_count(world)) == counts


@pytest.mark.parametrize(
    "headers, data, named",
    [
        ({}, None, "Missing; expected application/json."),  # no body, no Content-Type
        ({}, NEW_PRESCRIBER, "Missing; expected application/json."),  # a body sent without a type
        ({"Content-Type": "text/plain"}, NEW_PRESCRIBER, "Expected application/json; got text/plain."),
        (
            {"Content-Type": "application/x-www-form-urlencoded"},
            "npi=1679576722&first_name=Ada&last_name=Lovelace",
            "Expected application/json; got application/x-www-form-urlencoded.",
        ),
        ({"Content-Type": "application/xml"}, "<prescriber/>", "Expected application/json; got application/xml."),
    ],
)
def test_a_body_that_is_not_json_is_415_naming_application_json(world, headers, data, named):
    unchanged = _unchanged(world)
    r = world.api.as_(world.admin).post("/api/v1/prescribers", data=data, headers=headers)
    assert r.status_code == 415, r.json
    assert r.json["code"] == 415 and r.json["status"] == "Unsupported Media Type"
    assert "application/json" in r.json["message"]
    assert r.json["errors"] == {"Content-Type": [named]}  # not every field reported missing
    assert unchanged()


@pytest.mark.parametrize(
    "data, detail",
    [
        ("{not json", "Expecting property name enclosed in double quotes at line 1, column 2"),
        ('{"npi": "1679576722",}', "Expecting property name enclosed in double quotes"),
        ("[1, 2", "Expecting ',' delimiter"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        ("", "Empty."),
        ("   ", "Empty."),
    ],
)
def test_malformed_json_is_400_saying_the_body_is_not_valid_json(world, data, detail):
    unchanged = _unchanged(world)
    r = world.api.as_(world.admin).post("/api/v1/prescribers", data=data, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.json
    assert r.json["code"] == 400 and r.json["status"] == "Bad Request"
    assert "JSON" in r.json["message"]
    assert detail in r.json["errors"]["body"][0]
    assert unchanged()


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/vnd.rems+json"]
)
def test_json_content_types_are_accepted(world, content_type):
    r = world.api.as_(world.admin).post(
        "/api/v1/prescribers", data=NEW_PRESCRIBER, headers={"Content-Type": content_type}
    )
    assert r.status_code == 201, r.json


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # nothing at all
        {"json": {}},
        {"data": "", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},  # curl -X POST -d ''
        {"data": "", "headers": {"Content-Type": "application/json"}},
    ],
)
def test_a_body_less_operation_may_be_called_without_a_body(world, kwargs):
    """``EmptySchema`` and optional-reason operations need no body (``POST .../complete`` is sent bare)."""
    admin = world.api.as_(world.admin)
    path = f"/api/v1/prescribers/{world.prescriber.id}"
    assert admin.post(f"{path}/suspend", json={"reason": "audit"}).status_code == 200
    r = admin.post(f"{path}/reinstate", **kwargs)
    assert r.status_code == 200 and r.json["status"] == "certified", r.json


def test_a_body_on_a_body_less_operation_must_still_be_json(world):
    admin = world.api.as_(world.admin)
    path = f"/api/v1/prescribers/{world.prescriber.id}"
    assert admin.post(f"{path}/suspend", json={"reason": "audit"}).status_code == 200
    unchanged = _unchanged(world)
    r = admin.post(f"{path}/reinstate", data="please", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json["errors"] == {"Content-Type": ["Expected application/json; got text/plain."]}
    r = admin.post(f"{path}/reinstate", data="{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert unchanged()
    assert admin.get(path).json["status"] == "suspended"


def test_authentication_and_roles_come_before_the_content_type(world):
    plain = {"Content-Type": "text/plain"}
    assert world.api.post("/api/v1/prescribers", data=NEW_PRESCRIBER, headers=plain).status_code == 401
    r = world.api.as_(world.pharmacist_token).post("/api/v1/prescribers", data=NEW_PRESCRIBER, headers=plain)
    assert r.status_code == 403


def test_reads_ignore_the_content_type(world):
    r = world.api.as_(world.admin).get(
        f"/api/v1/prescribers/{world.prescriber.id}", data="x", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 200


def test_a_decision_sent_as_text_decides_nothing(world):
    patient = enrolled(world, ADULT_MALE)
    unchanged = audit_count(world.runtime)
    import json

    body = json.dumps({**AUTH_BODY, "patient_id": patient["id"]})
    r = (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post("/api/v1/authorizations", data=body, headers={"Content-Type": "text/plain", "Idempotency-Key": "k-1"})
    )
    assert r.status_code == 415
    assert audit_count(world.runtime) == unchanged
    # The key was never claimed: the same key with a JSON body is a first request.
    r = authorize(world, patient, headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
