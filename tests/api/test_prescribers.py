"""API.md, Prescribers (R-PRES-1)."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import PRESCRIBER_ATTESTED, VALID_NPIS, audit_count

NEW = {"npi": "1679576722", "first_name": "Grace", "last_name": "Hopper", "email": "gh@example.org"}


def register(world, body=NEW):
    return world.api.as_(world.admin).post("/api/v1/prescribers", json=body)


def test_register_returns_pending_prescriber(world):
    r = register(world)
    assert r.status_code == 201, r.json
    body = r.json
    assert body["status"] == "pending" and body["npi"] == NEW["npi"]
    assert uuid.UUID(body["id"]) and body["first_name"] == "Grace" and body["certified_at"] is None


@pytest.mark.parametrize(
    "npi, message",
    [
        ("1234567890", "check digit"),
        ("123456789", "10 digits"),
        ("12345678901", "10 digits"),
        ("12345678a3", "10 digits"),
        ("１２３４５６７８９３", "10 digits"),  # full-width digits are not ASCII digits
    ],
)
def test_register_refuses_invalid_npi_with_422(world, npi, message):
    before = audit_count(world.runtime)
    r = register(world, {**NEW, "npi": npi})
    assert r.status_code == 422
    assert message in " ".join(r.json["errors"]["npi"])
    assert audit_count(world.runtime) == before


def test_register_duplicate_npi_is_409_and_writes_nothing(world):
    assert register(world).status_code == 201
    before = audit_count(world.runtime)
    r = register(world, {**NEW, "first_name": "Other"})
    assert r.status_code == 409
    assert r.json["errors"] == {"npi": ["Already registered."]}
    assert audit_count(world.runtime) == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({**NEW, "status": "certified"}, "status"),
        ({**NEW, "id": str(uuid.uuid4())}, "id"),
        ({**NEW, "certified_at": "2026-01-01T00:00:00+00:00"}, "certified_at"),
        ({k: v for k, v in NEW.items() if k != "last_name"}, "last_name"),
        ({**NEW, "first_name": "   "}, "first_name"),
        ({**NEW, "email": "not-an-email"}, "email"),
    ],
)
def test_register_closed_schema_and_required_fields(world, body, field):
    r = register(world, body)
    assert r.status_code == 422
    assert field in r.json["errors"]
    assert r.json["code"] == 422 and r.json["status"] == "Unprocessable Entity" and field in r.json["message"]


@pytest.mark.parametrize("who", ["auditor", "prescriber_token", "pharmacist_token"])
def test_register_is_admin_only(world, who):
    r = world.api.as_(getattr(world, who)).post("/api/v1/prescribers", json=NEW)
    assert r.status_code == 403


def test_register_forbidden_before_validation(world):
    """A caller without the role learns nothing about the schema."""
    r = world.api.as_(world.auditor).post("/api/v1/prescribers", json={"nonsense": 1})
    assert r.status_code == 403


def test_prescriber_certifies_itself(world):
    pid = register(world).json["id"]
    token = (
        world.api.as_(world.admin)
        .post("/api/v1/users", json={"name": "Dr G", "role": "prescriber", "prescriber_id": pid})
        .json["token"]
    )
    r = world.api.as_(token).post(f"/api/v1/prescribers/{pid}/certify", json={"attestations": PRESCRIBER_ATTESTED})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "certified" and r.json["certified_at"]


def test_certify_needs_every_attestation_true(world):
    pid = register(world).json["id"]
    before = audit_count(world.runtime)
    attestations = {**PRESCRIBER_ATTESTED, "completed_education": False}
    del attestations["agrees_to_report_pregnancies"]
    r = world.api.as_(world.admin).post(f"/api/v1/prescribers/{pid}/certify", json={"attestations": attestations})
    assert r.status_code == 422
    assert r.json["errors"]["attestations.completed_education"] == ["Must be true."]
    assert "attestations.agrees_to_report_pregnancies" in r.json["errors"]
    assert audit_count(world.runtime) == before
    assert world.api.as_(world.admin).get(f"/api/v1/prescribers/{pid}").json["status"] == "pending"


@pytest.mark.parametrize("value", ["true", 1, "yes", None])
def test_attestation_must_be_a_json_true(world, value):
    pid = register(world).json["id"]
    r = world.api.as_(world.admin).post(
        f"/api/v1/prescribers/{pid}/certify",
        json={"attestations": {**PRESCRIBER_ATTESTED, "completed_education": value}},
    )
    assert r.status_code == 422


def test_certify_unknown_attestation_is_422(world):
    pid = register(world).json["id"]
    r = world.api.as_(world.admin).post(
        f"/api/v1/prescribers/{pid}/certify", json={"attestations": {**PRESCRIBER_ATTESTED, "extra": True}}
    )
    assert r.status_code == 422 and "attestations.extra" in r.json["errors"]


def test_another_prescriber_cannot_see_or_certify(world):
    pid = world.other_prescriber.id
    as_prescriber = world.api.as_(world.prescriber_token)
    assert as_prescriber.get(f"/api/v1/prescribers/{pid}").status_code == 404
    assert (
        as_prescriber.post(f"/api/v1/prescribers/{pid}/certify", json={"attestations": PRESCRIBER_ATTESTED}).status_code
        == 404
    )
    assert as_prescriber.get(f"/api/v1/prescribers/{world.prescriber.id}").status_code == 200


@pytest.mark.parametrize("who", ["auditor", "pharmacist_token"])
def test_get_forbidden_roles(world, who):
    assert world.api.as_(getattr(world, who)).get(f"/api/v1/prescribers/{world.prescriber.id}").status_code == 403


def test_unknown_prescriber_is_404(world):
    missing = uuid.uuid4()
    admin = world.api.as_(world.admin)
    assert admin.get(f"/api/v1/prescribers/{missing}").status_code == 404
    for action, body in (
        ("certify", {"attestations": PRESCRIBER_ATTESTED}),
        ("suspend", {"reason": "x"}),
        ("reinstate", {}),
        ("decertify", {"reason": "x"}),
    ):
        r = admin.post(f"/api/v1/prescribers/{missing}/{action}", json=body)
        assert r.status_code == 404, action
        assert r.json["message"] == "Prescriber not found."


def test_life_cycle_through_the_api(world):
    admin = world.api.as_(world.admin)
    pid = world.prescriber.id
    r = admin.post(f"/api/v1/prescribers/{pid}/suspend", json={"reason": "license under review"})
    assert (
        r.status_code == 200 and r.json["status"] == "suspended" and r.json["status_reason"] == "license under review"
    )
    r = admin.post(f"/api/v1/prescribers/{pid}/reinstate", json={})
    assert r.status_code == 200 and r.json["status"] == "certified" and r.json["status_reason"] is None
    r = admin.post(f"/api/v1/prescribers/{pid}/decertify", json={"reason": "retired"})
    assert r.status_code == 200 and r.json["status"] == "decertified"


@pytest.mark.parametrize(
    "setup, action, body, state",
    [
        ([], "reinstate", {}, "certified"),
        ([], "certify", {"attestations": PRESCRIBER_ATTESTED}, "certified"),
        (["suspend"], "suspend", {"reason": "again"}, "suspended"),
        (["decertify"], "reinstate", {}, "decertified"),
        (["decertify"], "decertify", {"reason": "again"}, "decertified"),
        (["decertify"], "suspend", {"reason": "x"}, "decertified"),
    ],
)
def test_illegal_transition_is_409_naming_current_state(world, setup, action, body, state):
    admin = world.api.as_(world.admin)
    pid = world.prescriber.id
    for step in setup:
        assert admin.post(f"/api/v1/prescribers/{pid}/{step}", json={"reason": "setup"}).status_code == 200
    before = audit_count(world.runtime)
    r = admin.post(f"/api/v1/prescribers/{pid}/{action}", json=body)
    assert r.status_code == 409
    assert f"'{state}'" in r.json["message"]
    assert audit_count(world.runtime) == before


def test_suspend_needs_a_reason(world):
    r = world.api.as_(world.admin).post(f"/api/v1/prescribers/{world.prescriber.id}/suspend", json={})
    assert r.status_code == 422 and "reason" in r.json["errors"]


def test_reinstate_body_is_closed(world):
    world.api.as_(world.admin).post(f"/api/v1/prescribers/{world.prescriber.id}/suspend", json={"reason": "x"})
    r = world.api.as_(world.admin).post(
        f"/api/v1/prescribers/{world.prescriber.id}/reinstate", json={"status": "certified"}
    )
    assert r.status_code == 422


@pytest.mark.parametrize("action", ["suspend", "reinstate", "decertify"])
def test_state_changes_are_admin_only(world, action):
    r = world.api.as_(world.prescriber_token).post(
        f"/api/v1/prescribers/{world.prescriber.id}/{action}", json={"reason": "x"}
    )
    assert r.status_code == 403


def test_valid_npis_fixture_is_valid():
    from workflows.identifiers import npi_problem

    assert all(npi_problem(n) is None for n in VALID_NPIS)
