"""API.md, Conventions: auth, error format, closed schemas, sandbox clock, operations."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.helpers import PRESCRIBER_ATTESTED

#: Every protected operation of this slice, with a body that would be valid.
OPERATIONS = [
    ("POST", "/api/v1/users", {"name": "x", "role": "auditor"}),
    ("POST", "/api/v1/prescribers", {"npi": "1679576722", "first_name": "a", "last_name": "b"}),
    ("GET", "/api/v1/prescribers/{prescriber}", None),
    ("POST", "/api/v1/prescribers/{prescriber}/certify", {"attestations": PRESCRIBER_ATTESTED}),
    ("POST", "/api/v1/prescribers/{prescriber}/suspend", {"reason": "x"}),
    ("POST", "/api/v1/prescribers/{prescriber}/reinstate", {}),
    ("POST", "/api/v1/prescribers/{prescriber}/decertify", {"reason": "x"}),
    (
        "POST",
        "/api/v1/pharmacies",
        {"ncpdp_id": "5550001", "name": "n", "authorized_representative": {"name": "r", "email": "r@example.org"}},
    ),
    ("GET", "/api/v1/pharmacies/{pharmacy}", None),
    ("POST", "/api/v1/pharmacies/{pharmacy}/certify", {"attestations": {}}),
    ("POST", "/api/v1/pharmacies/{pharmacy}/suspend", {}),
    ("POST", "/api/v1/pharmacies/{pharmacy}/reinstate", {}),
    ("POST", "/api/v1/pharmacies/{pharmacy}/decertify", {}),
    (
        "POST",
        "/api/v1/patients",
        {
            "first_name": "a",
            "last_name": "b",
            "date_of_birth": "1960-01-01",
            "risk_category": "MALE_ADULT",
            "ppaf_signed": True,
            "counseling_completed": True,
        },
    ),
    ("GET", "/api/v1/patients/{patient}", None),
    (
        "POST",
        "/api/v1/patients/{patient}/pregnancy-tests",
        {"collected_at": "2026-01-01T00:00:00+00:00", "result": "negative", "sensitivity_miu_ml": 25},
    ),
    ("POST", "/api/v1/patients/{patient}/surveys", {"completed_at": "2026-01-01T00:00:00+00:00", "answers": {}}),
    ("POST", "/api/v1/patients/{patient}/reinstate", {}),
    ("POST", "/api/v1/patients/{patient}/resolve-intervention", {}),
    ("POST", "/api/v1/patients/{patient}/discontinue", {}),
    (
        "POST",
        "/api/v1/authorizations",
        {
            "patient_id": str(uuid.UUID(int=7)),
            "days_supply": 28,
            "quantity": 28,
            "strength_mg": 25,
            "prescriber_survey": {"counseled_on_risks": True},
        },
    ),
    ("GET", "/api/v1/authorizations/RA-00000-00000-00000", None),
    ("POST", "/api/v1/authorizations/RA-00000-00000-00000/void", {}),
    (
        "POST",
        "/api/v1/dispenses",
        {
            "authorization_number": "RA-00000-00000-00000",
            "rems_patient_id": "RP-00000-00000",
            "days_supply": 28,
            "quantity": 28,
            "counseling": {"medication_guide_provided": True, "checklist_completed": True},
        },
    ),
    ("GET", "/api/v1/dispenses/RC-00000-00000-00000", None),
    ("POST", "/api/v1/dispenses/RC-00000-00000-00000/complete", {}),
    ("POST", "/api/v1/dispenses/RC-00000-00000-00000/reverse", {}),
]


def _path(world, template):
    return template.format(prescriber=world.prescriber.id, pharmacy=world.pharmacy.id, patient=uuid.UUID(int=7))


@pytest.mark.parametrize("method, path, body", OPERATIONS)
@pytest.mark.parametrize("auth", [None, "Bearer", "Bearer not-a-token", "Basic abc", "Token rems_x"])
def test_every_operation_needs_a_valid_bearer_token(world, method, path, body, auth):
    headers = {"Authorization": auth} if auth else {}
    r = world.api.request(method, _path(world, path), json=body, headers=headers)
    assert r.status_code == 401
    assert r.json["code"] == 401 and r.json["status"] == "Unauthorized" and "Authorization" in r.json["errors"]


def test_malformed_json_is_400(world):
    r = world.api.as_(world.admin).post(
        "/api/v1/prescribers", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json["code"] == 400 and r.json["status"] == "Bad Request" and r.json["message"]


def test_json_array_body_is_422(world):
    r = world.api.as_(world.admin).post("/api/v1/prescribers", json=[1, 2])
    assert r.status_code == 422 and r.json["errors"]


def test_unknown_path_and_method_use_the_error_format(world):
    r = world.api.as_(world.admin).get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json["code"] == 404
    r = world.api.as_(world.admin).request("DELETE", f"/api/v1/prescribers/{world.prescriber.id}")
    assert r.status_code == 405 and r.json["code"] == 405


def test_malformed_id_in_path_is_404(world):
    assert world.api.as_(world.admin).get("/api/v1/prescribers/not-a-uuid").status_code == 404


def test_clock_header_sets_effective_time(world):
    from rems_service.db.audit_chain import iter_entries

    at = "2027-02-03T04:05:06+00:00"
    r = world.api.as_(world.admin).post(
        f"/api/v1/prescribers/{world.prescriber.id}/suspend", json={"reason": "x"}, headers={"X-Rems-Now": at}
    )
    assert r.status_code == 200 and r.json["status_changed_at"].startswith("2027-02-03T04:05:06")
    with world.runtime.uow() as uow:
        entry = list(iter_entries(uow.session))[-1]
    assert entry.effective_at.isoformat().startswith("2027-02-03T04:05:06")
    assert entry.recorded_at.year != 2027  # the real server time stands beside it


@pytest.mark.parametrize("value", ["yesterday", "2027-02-03T04:05:06", "2027-13-01T00:00:00+00:00"])
def test_bad_clock_header_is_400(world, value):
    r = world.api.as_(world.admin).get(f"/api/v1/prescribers/{world.prescriber.id}", headers={"X-Rems-Now": value})
    assert r.status_code == 400 and "X-Rems-Now" in r.json["errors"]


@pytest.mark.parametrize("env", ["production", "development"])
def test_clock_header_refused_outside_sandbox_and_test(make_app, monkeypatch, env):
    monkeypatch.setenv("REMS_ENV", env)
    app = make_app()
    r = app.test_client().get("/healthz", headers={"X-Rems-Now": "2027-01-01T00:00:00+00:00"})
    assert r.status_code == 400 and "X-Rems-Now" in r.json["errors"]
    assert app.test_client().get("/healthz").status_code == 200


def test_clock_header_accepted_in_sandbox(make_app, monkeypatch):
    monkeypatch.setenv("REMS_ENV", "sandbox")
    r = make_app().test_client().get("/healthz", headers={"X-Rems-Now": "2027-01-01T00:00:00+00:00"})
    assert r.status_code == 200


def test_healthz_and_readyz_are_public(api):
    assert api.get("/healthz").json == {"status": "ok"}
    r = api.get("/readyz")
    assert r.status_code == 200 and r.json["checks"]["database"] == "ok"


def test_readyz_checks_redis_when_configured(make_app, redis_url):
    r = make_app(REDIS_URL=redis_url).test_client().get("/readyz")
    assert r.status_code == 200 and r.json["checks"]["redis"] == "ok"


def test_readyz_reports_redis_down_as_degraded_and_stays_in(make_app):
    """Issue 18 item 10: decisions work without Redis, so the instance stays in the pool."""
    r = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client().get("/readyz")
    assert r.status_code == 200 and r.json["checks"]["redis"] == "unavailable"
    assert r.json["status"] == "degraded"


def test_readyz_is_503_when_the_database_is_down(make_app):
    r = make_app(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/none").test_client().get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["database"] == "unavailable"


def test_database_down_is_503_not_500(make_app):
    client = make_app(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/none").test_client()
    r = client.get(f"/api/v1/prescribers/{uuid.uuid4()}", headers={"Authorization": "Bearer rems_x"})
    assert r.status_code == 503 and r.json["code"] == 503


def test_openapi_document_and_docs_are_public(api):
    spec = api.get("/api/v1/openapi.json").json
    assert spec["info"]["title"] == "Lenalidomide REMS"
    assert "/api/v1/prescribers/{prescriber_id}/certify" in spec["paths"]
    op = spec["paths"]["/api/v1/prescribers"]["post"]
    assert op["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert api.get("/api/v1/docs").status_code == 200


def _operations(spec):
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield method, template, op


def _resolve(spec, obj):
    while "$ref" in obj:
        section, name = obj["$ref"].split("/")[-2:]
        obj = spec["components"][section][name]
    return obj


def _statuses(op):
    return set(op["responses"])


def test_every_operation_documents_the_sandbox_clock_header(api):
    spec = api.get("/api/v1/openapi.json").json
    count = 0
    for method, template, op in _operations(spec):
        headers = [_resolve(spec, p) for p in op.get("parameters", [])]
        clock = [p for p in headers if p["in"] == "header" and p["name"] == "X-Rems-Now"]
        assert len(clock) == 1, (method, template)
        assert clock[0]["required"] is False
        assert "Sandbox and test only" in clock[0]["description"]
        assert "400" in _statuses(op), (method, template)
        count += 1
    assert count > 35


def test_every_operation_documents_the_statuses_its_shape_can_answer(api):
    spec = api.get("/api/v1/openapi.json").json
    seen = {"protected": 0, "path": 0, "body": 0, "query": 0}
    for method, template, op in _operations(spec):
        statuses, where = _statuses(op), (method, template)
        if op.get("security"):
            assert {"401", "403", "503"} <= statuses, where
            seen["protected"] += 1
        else:
            assert not {"401", "403"} & statuses, where
        if "{" in template:
            assert "404" in statuses, where
            seen["path"] += 1
        if op.get("security") and method in ("post", "put", "patch"):
            assert "409" in statuses, where
        if "requestBody" in op:
            assert {"400", "415", "422"} <= statuses, where
            assert list(op["requestBody"]["content"]) == ["application/json"], where
            seen["body"] += 1
        else:
            assert "415" not in statuses, where
        if any(_resolve(spec, p)["in"] == "query" for p in op.get("parameters", [])):
            assert "422" in statuses, where
            seen["query"] += 1
    assert seen["protected"] > 30 and seen["path"] > 15 and seen["body"] > 20 and seen["query"] >= 3, seen


def test_decisions_document_503_failing_closed(api):
    spec = api.get("/api/v1/openapi.json").json
    for path in ("/api/v1/authorizations", "/api/v1/dispenses"):
        response = _resolve(spec, spec["paths"][path]["post"]["responses"]["503"])
        assert "nothing was decided" in response["description"] and "fail closed" in response["description"]
    other = _resolve(spec, spec["paths"]["/api/v1/prescribers"]["post"]["responses"]["503"])
    assert "fail closed" not in other["description"]


def test_a_status_an_operation_declares_itself_is_kept_with_the_error_body(world):
    """``POST /authorizations`` names its patient in the body: an unknown one is a 404, as documented."""
    spec = world.api.get("/api/v1/openapi.json").json
    response = spec["paths"]["/api/v1/authorizations"]["post"]["responses"]["404"]
    assert "patient_id" in response["description"]
    assert response["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    body = next(body for method, path, body in OPERATIONS if (method, path) == ("POST", "/api/v1/authorizations"))
    assert body["patient_id"] == str(uuid.UUID(int=7))  # no such patient
    r = world.api.as_(world.prescriber_token).post("/api/v1/authorizations", json=body)
    assert r.status_code == 404 and r.json["code"] == 404


def test_every_error_response_is_the_one_error_component(api):
    spec = api.get("/api/v1/openapi.json").json
    error = spec["components"]["schemas"]["Error"]
    assert {"code", "status", "message", "errors"} == set(error["properties"])
    assert error["properties"]["errors"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    count = 0
    for method, template, op in _operations(spec):
        for status, response in op["responses"].items():
            if status.startswith("2") or (template == "/readyz" and status == "503"):
                continue  # a 503 of /readyz is its readiness report, not an error body
            assert "$ref" in response or status not in {"400", "401", "403", "409", "415", "422", "503"}
            content = _resolve(spec, response)["content"]
            assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}, (
                method,
                template,
                status,
            )
            count += 1
    assert count > 200


def test_the_document_is_valid_openapi(api):
    from openapi_spec_validator import validate

    spec = api.get("/api/v1/openapi.json").json
    validate(spec)


ROLE_NOTE = re.compile(r"Roles: ([a-z, ]+)\.$")


def test_every_operation_documented_with_a_body_refuses_a_non_json_body_with_415(world):
    """The document is held to what the service does: 415 for text, for every body operation."""
    spec = world.api.get("/api/v1/openapi.json").json
    tokens = {
        "admin": world.admin,
        "prescriber": world.prescriber_token,
        "pharmacist": world.pharmacist_token,
        "auditor": world.auditor,
    }
    checked = 0
    for method, template, op in _operations(spec):
        if "requestBody" not in op:
            continue
        role = sorted(ROLE_NOTE.search(op["description"]).group(1).split(", "))[0]
        path = re.sub(
            r"{(\w+)}", lambda m: "RA-00000-00000-00000" if m.group(1) == "number" else str(uuid.uuid4()), template
        )
        r = world.api.as_(tokens[role]).request(method.upper(), path, data="{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415, (method, template, role, r.json)
        assert r.json["errors"] == {"Content-Type": ["Expected application/json; got text/plain."]}
        checked += 1
    assert checked > 20


def test_request_id_is_echoed_and_generated(api):
    assert api.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    generated = api.get("/healthz", headers={"X-Request-Id": "bad id;<script>"}).headers["X-Request-Id"]
    assert generated and generated != "bad id;<script>"


def test_log_lines_carry_request_and_user_ids(world, capsys):
    world.api.as_(world.admin).get(f"/api/v1/prescribers/{world.prescriber.id}", headers={"X-Request-Id": "req-42"})
    # REMS_ENV=test logs text lines: "<time> INFO    rems.access: request method=GET ... request_id=req-42 user_id=..."
    lines = capsys.readouterr().err.splitlines()
    access = [line for line in lines if " rems.access: " in line and " request_id=req-42" in line]
    assert access and re.search(r" user_id=[0-9a-f-]{36}\b", access[0]) and " status=200 " in access[0]
