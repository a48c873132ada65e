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


def test_readyz_is_503_when_redis_is_down(make_app):
    r = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client().get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["redis"] == "unavailable"


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
