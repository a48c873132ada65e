"""API.md, Pharmacies (R-PHA-1, R-PHA-2)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from tests.helpers import PHARMACY_ATTESTED, audit_count, utc

NEW = {
    "ncpdp_id": "5550001",
    "name": "Harbor Pharmacy",
    "authorized_representative": {"name": "Pat Rep", "email": "pat@example.org"},
}


def register(world, body=NEW):
    return world.api.as_(world.admin).post("/api/v1/pharmacies", json=body)


def test_register_returns_pending_pharmacy(world):
    r = register(world)
    assert r.status_code == 201, r.json
    assert r.json["status"] == "pending" and r.json["ncpdp_id"] == "5550001" and r.json["name"] == "Harbor Pharmacy"
    assert r.json["authorized_representative"] == NEW["authorized_representative"]


@pytest.mark.parametrize("ncpdp_id", ["123456", "12345678", "12345a7", "", "1234567 "])
def test_register_refuses_malformed_ncpdp_id(world, ncpdp_id):
    r = register(world, {**NEW, "ncpdp_id": ncpdp_id})
    assert r.status_code == 422 and "ncpdp_id" in r.json["errors"]


def test_register_duplicate_ncpdp_is_409(world):
    assert register(world).status_code == 201
    before = audit_count(world.runtime)
    r = register(world, {**NEW, "name": "Other"})
    assert r.status_code == 409 and r.json["errors"] == {"ncpdp_id": ["Already registered."]}
    assert audit_count(world.runtime) == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({**NEW, "status": "certified"}, "status"),
        ({**NEW, "certified_until": "2030-01-01T00:00:00+00:00"}, "certified_until"),
        ({k: v for k, v in NEW.items() if k != "authorized_representative"}, "authorized_representative"),
        ({**NEW, "authorized_representative": {"name": "X"}}, "authorized_representative.email"),
        (
            {**NEW, "authorized_representative": {"name": "X", "email": "x@example.org", "phone": "1"}},
            "authorized_representative.phone",
        ),
    ],
)
def test_register_schema_is_closed_and_complete(world, body, field):
    r = register(world, body)
    assert r.status_code == 422 and field in r.json["errors"], r.json


@pytest.mark.parametrize("who", ["auditor", "prescriber_token", "pharmacist_token"])
def test_register_and_certify_are_admin_only(world, who):
    api = world.api.as_(getattr(world, who))
    assert api.post("/api/v1/pharmacies", json=NEW).status_code == 403
    assert (
        api.post(
            f"/api/v1/pharmacies/{world.pharmacy.id}/certify", json={"attestations": PHARMACY_ATTESTED}
        ).status_code
        == 403
    )
    for action in ("suspend", "reinstate", "decertify"):
        assert api.post(f"/api/v1/pharmacies/{world.pharmacy.id}/{action}", json={}).status_code == 403


def test_certify_sets_certified_until_from_the_program(world):
    pid = register(world).json["id"]
    now = utc(2026, 3, 1, 12, 0)
    r = (
        world.api.as_(world.admin)
        .at(now)
        .post(f"/api/v1/pharmacies/{pid}/certify", json={"attestations": PHARMACY_ATTESTED})
    )
    assert r.status_code == 200, r.json
    days = world.runtime.program.in_force(now).pharmacy_certification_days
    assert r.json["status"] == "certified"
    assert datetime.fromisoformat(r.json["certified_at"]) == now
    assert datetime.fromisoformat(r.json["certified_until"]) == now + timedelta(days=days)


def test_certify_needs_every_attestation(world):
    pid = register(world).json["id"]
    r = world.api.as_(world.admin).post(
        f"/api/v1/pharmacies/{pid}/certify", json={"attestations": {**PHARMACY_ATTESTED, "staff_trained": False}}
    )
    assert r.status_code == 422 and r.json["errors"] == {"attestations.staff_trained": ["Must be true."]}


def certified_pharmacy(world, at):
    pid = register(world).json["id"]
    world.api.as_(world.admin).at(at).post(
        f"/api/v1/pharmacies/{pid}/certify", json={"attestations": PHARMACY_ATTESTED}
    )
    return pid


def test_certification_expires_at_certified_until_without_any_job(world):
    start = utc(2026, 1, 10, 9, 30)
    pid = certified_pharmacy(world, start)
    until = start + timedelta(days=world.runtime.program.in_force(start).pharmacy_certification_days)
    admin = world.api.as_(world.admin)
    just_before = admin.at(until - timedelta(microseconds=1)).get(f"/api/v1/pharmacies/{pid}")
    assert just_before.json["status"] == "certified"
    at_end = admin.at(until).get(f"/api/v1/pharmacies/{pid}")
    assert at_end.json["status"] == "expired"


def test_expired_pharmacy_renews_and_cannot_be_suspended(world):
    start = utc(2026, 1, 10)
    pid = certified_pharmacy(world, start)
    later = world.api.as_(world.admin).at(start + timedelta(days=800))
    r = later.post(f"/api/v1/pharmacies/{pid}/suspend", json={"reason": "x"})
    assert r.status_code == 409 and "'expired'" in r.json["message"]
    r = later.post(f"/api/v1/pharmacies/{pid}/certify", json={"attestations": PHARMACY_ATTESTED})
    assert r.status_code == 200 and r.json["status"] == "certified"
    assert datetime.fromisoformat(r.json["certified_until"]) > start + timedelta(days=800)


def test_renewal_while_certified_extends(world):
    start = utc(2026, 1, 10)
    pid = certified_pharmacy(world, start)
    r = (
        world.api.as_(world.admin)
        .at(start + timedelta(days=700))
        .post(f"/api/v1/pharmacies/{pid}/certify", json={"attestations": PHARMACY_ATTESTED})
    )
    assert r.status_code == 200
    assert datetime.fromisoformat(r.json["certified_until"]) == start + timedelta(days=700 + 730)


def test_life_cycle(world):
    admin = world.api.as_(world.admin)
    pid = world.pharmacy.id
    assert admin.post(f"/api/v1/pharmacies/{pid}/suspend", json={"reason": "inspection"}).json["status"] == "suspended"
    assert admin.post(f"/api/v1/pharmacies/{pid}/certify", json={"attestations": PHARMACY_ATTESTED}).status_code == 409
    assert admin.post(f"/api/v1/pharmacies/{pid}/reinstate").json["status"] == "certified"
    assert admin.post(f"/api/v1/pharmacies/{pid}/decertify", json={}).json["status"] == "decertified"
    for action, body in (
        ("reinstate", {}),
        ("suspend", {}),
        ("certify", {"attestations": PHARMACY_ATTESTED}),
        ("decertify", {}),
    ):
        r = admin.post(f"/api/v1/pharmacies/{pid}/{action}", json=body)
        assert r.status_code == 409 and "'decertified'" in r.json["message"], action


def test_pending_pharmacy_cannot_be_suspended_or_reinstated(world):
    pid = register(world).json["id"]
    admin = world.api.as_(world.admin)
    assert admin.post(f"/api/v1/pharmacies/{pid}/suspend", json={}).status_code == 409
    assert admin.post(f"/api/v1/pharmacies/{pid}/reinstate", json={}).status_code == 409


def test_pharmacist_sees_only_its_pharmacy(world):
    api = world.api.as_(world.pharmacist_token)
    assert api.get(f"/api/v1/pharmacies/{world.pharmacy.id}").status_code == 200
    assert api.get(f"/api/v1/pharmacies/{world.other_pharmacy.id}").status_code == 404


@pytest.mark.parametrize("who", ["auditor", "prescriber_token"])
def test_get_forbidden_roles(world, who):
    assert world.api.as_(getattr(world, who)).get(f"/api/v1/pharmacies/{world.pharmacy.id}").status_code == 403


def test_unknown_pharmacy_is_404(world):
    admin = world.api.as_(world.admin)
    missing = uuid.uuid4()
    assert admin.get(f"/api/v1/pharmacies/{missing}").status_code == 404
    for action, body in (
        ("certify", {"attestations": PHARMACY_ATTESTED}),
        ("suspend", {}),
        ("reinstate", {}),
        ("decertify", {}),
    ):
        assert admin.post(f"/api/v1/pharmacies/{missing}/{action}", json=body).status_code == 404
