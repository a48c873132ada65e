"""Authentication and role checks come before anything else, and the OpenAPI document says so.

API.md, Conventions: 401 no or bad token, 403 role may not call this operation,
both in the API's JSON error body. The roles each operation allows are read
from its OpenAPI description, so every protected operation (present and
future) is checked, and the document is held to what the service enforces.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from rems_service.context import ctx
from workflows.rules import Rule

#: An invalid body for every operation: an unknown field is a 422 wherever a body is read.
INVALID_BODY = {"no_such_field": True}
#: Path parameters filled in with values of the right shape for their converter.
PATH_VALUES = {"seq": "1", "number": "RA-00000-00000-00000"}
PUBLIC = {"/healthz", "/readyz"}
ROLE_NOTE = re.compile(r"Roles: ([a-z, ]+)\.$")


def _spec(world: Any) -> dict[str, Any]:
    return world.api.get("/api/v1/openapi.json").json


def _operations(world: Any) -> list[tuple[str, str, set[str]]]:
    """(method, concrete path, roles allowed) of every protected operation in the document."""
    found = []
    for template, item in _spec(world)["paths"].items():
        if template in PUBLIC:
            continue
        for method, op in item.items():
            if method == "parameters":
                continue
            match = ROLE_NOTE.search(op.get("description", ""))
            assert match, f"{method.upper()} {template} documents no roles"
            path = re.sub(r"{(\w+)}", lambda m: PATH_VALUES.get(m.group(1), str(uuid.uuid4())), template)
            found.append((method.upper(), path, set(match.group(1).split(", "))))
    return found


def _tokens(world: Any) -> dict[str, str]:
    return {
        "admin": world.admin,
        "auditor": world.auditor,
        "prescriber": world.prescriber_token,
        "pharmacist": world.pharmacist_token,
    }


@pytest.mark.parametrize(
    "header, invalid_token",
    [(None, False), ("Bearer", False), ("Basic YTpi", False), ("Token rems_x", False), ("Bearer rems_nope", True)],
)
def test_missing_or_bad_token_is_401_before_the_body_is_validated(world, header, invalid_token):
    headers = {"Authorization": header} if header else {}
    for method, path in [
        ("POST", "/api/v1/prescribers"),
        ("POST", f"/api/v1/patients/{uuid.uuid4()}/pregnancy-tests"),
        ("GET", "/api/v1/audit/events?limit=0"),
    ]:
        body = INVALID_BODY if method == "POST" else None
        r = world.api.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.json)
        assert set(r.json) == {"code", "status", "message", "errors"}
        assert r.json["code"] == 401 and r.json["status"] == "Unauthorized"
        assert list(r.json["errors"]) == ["Authorization"]
        challenge = r.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="')
        assert ('error="invalid_token"' in challenge) is invalid_token


def test_every_protected_operation_refuses_a_forbidden_role_before_validating(world):
    tokens = _tokens(world)
    checked = 0
    for method, path, allowed in _operations(world):
        assert allowed <= set(tokens), (method, path, allowed)
        for role in sorted(set(tokens) - allowed):
            body = INVALID_BODY if method in ("POST", "PUT", "PATCH") else None
            query = "?no_such_filter=1" if method == "GET" else ""
            r = world.api.as_(tokens[role]).request(method, path + query, json=body)
            assert r.status_code == 403, (role, method, path, r.json)
            assert r.json["code"] == 403 and r.json["status"] == "Forbidden" and role in r.json["message"]
            checked += 1
    assert checked > 30  # the document lists the operations; an empty list would prove nothing


def test_an_allowed_role_reaches_validation(world):
    r = world.api.as_(world.admin).post("/api/v1/prescribers", json=INVALID_BODY)
    assert r.status_code == 422 and "no_such_field" in r.json["errors"]


def test_options_needs_a_valid_token_too(world):
    path = f"/api/v1/prescribers/{world.prescriber.id}"
    r = world.api.request("OPTIONS", path)
    assert r.status_code == 401 and r.json["code"] == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert world.api.as_(world.admin).request("OPTIONS", path).status_code == 200


def test_the_document_declares_bearer_auth_on_every_protected_operation(world):
    spec = _spec(world)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operations = 0
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            if template in PUBLIC:
                assert "security" not in op, template
            else:
                assert op["security"] == [{"bearerAuth": []}], (method, template)
                operations += 1
    assert operations > 20


def test_roles_note_keeps_the_docstring_description(world):
    op = _spec(world)["paths"]["/api/v1/patients/{patient_id}/pregnancy-tests"]["post"]
    assert op["summary"] == "Record a pregnancy test."
    assert "A positive result halts the patient at once." in " ".join(op["description"].split())
    assert op["description"].endswith("Roles: prescriber.")


def test_rule_ids_in_the_document_are_catalogue_ids(world):
    text = str(_spec(world))
    cited = set(re.findall(r"R-[A-Z]+-\d+", text))
    assert cited, "the schemas cite the rules their fields serve"
    assert cited <= {rule.value for rule in Rule}


@pytest.mark.parametrize("env", ["production", "development"])
def test_clock_header_refused_outside_sandbox_and_test_on_protected_routes(world, make_app, monkeypatch, env):
    monkeypatch.setenv("REMS_ENV", env)
    client = make_app().test_client()
    headers = {"Authorization": f"Bearer {world.admin}", "X-Rems-Now": "2027-01-01T00:00:00+00:00"}
    path = f"/api/v1/prescribers/{world.prescriber.id}/suspend"
    r = client.post(path, json={"reason": "x"}, headers=headers)
    assert r.status_code == 400 and r.json["code"] == 400 and "X-Rems-Now" in r.json["errors"]
    r = client.get(f"/api/v1/prescribers/{world.prescriber.id}", headers={"Authorization": headers["Authorization"]})
    assert r.status_code == 200 and r.json["status"] == "certified"  # the refused request changed nothing


def test_the_request_context_holds_the_caller_and_the_request_time(world, app):
    at = "2027-02-03T04:05:06+00:00"
    headers = {"Authorization": f"Bearer {world.admin}", "X-Rems-Now": at}
    with app.test_request_context(f"/api/v1/prescribers/{world.prescriber.id}", headers=headers):
        app.preprocess_request()
        context = ctx()
        assert context.actor.role == "admin" and context.now.isoformat() == at
        assert context.program is world.runtime.program
        with pytest.raises(AttributeError):
            context.now = None  # frozen: built once per request


def test_no_request_context_outside_an_authenticated_request(app):
    with app.test_request_context("/healthz"):
        app.preprocess_request()
        with pytest.raises(RuntimeError, match="No request context"):
            ctx()
