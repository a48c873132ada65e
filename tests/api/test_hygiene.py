"""Issue 18 item 10: 405 with Allow, no-store on PHI, claims that do not outlive a failure,
and a readiness that does not take the instance out for Redis alone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlmodel import select

from rems_service.db.engine import database_now
from rems_service.db.models import Authorization, IdempotencyKey
from rems_service.services import authorizations as authorization_service
from rems_service.services import idempotency
from tests.helpers import ADULT_MALE, AUTH_BODY, NOW, authorize, enroll, ready_patient


def test_405_names_the_allowed_methods(world):
    api = world.api.as_(world.prescriber_token)
    r = api.request("DELETE", "/api/v1/patients")
    assert r.status_code == 405 and r.json["code"] == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} >= {"GET", "POST"}
    r = api.request("PUT", "/api/v1/authorizations/AUTH-1")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    # Unauthenticated too: the method is refused before anything else.
    assert "Allow" in world.api.request("PATCH", "/healthz").headers


def test_phi_responses_are_never_cached_or_sniffed(world):
    patient = enroll(world, ADULT_MALE).json
    for r in (
        world.api.as_(world.prescriber_token).get(f"/api/v1/patients/{patient['id']}"),
        world.api.as_(world.prescriber_token).get("/api/v1/patients"),
        world.api.as_(world.admin).get("/api/v1/audit/export?format=csv"),
        world.api.as_(world.prescriber_token).get("/api/v1/patients/00000000-0000-4000-8000-000000000000"),
        world.api.get("/api/v1/patients"),  # 401
    ):
        assert r.headers["Cache-Control"] == "no-store", r.status_code
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    spec = world.api.get("/api/v1/openapi.json")
    assert spec.status_code == 200 and "no-store" not in spec.headers.get("Cache-Control", "")
    assert spec.headers["X-Content-Type-Options"] == "nosniff"


def _backdate_claims(world, seconds):
    with world.runtime.session() as s:
        for row in s.exec(select(IdempotencyKey)).all():
            row.created_at = database_now(s) - timedelta(seconds=seconds)
            s.add(row)
        s.commit()


def test_a_claim_whose_release_failed_expires_in_seconds(world, monkeypatch):
    """The connection is cut while deciding and the release cannot run: the key is free
    again seconds later (it was 2 minutes), and the error the caller sees is the first one."""
    patient = ready_patient(world)
    key = {"Idempotency-Key": "rx-cut"}

    def cut(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))

    with monkeypatch.context() as m:
        m.setattr(authorization_service, "_decide", cut)
        m.setattr(idempotency, "release", cut)
        r = authorize(world, patient, headers=key)
    assert r.status_code == 503  # the decision's failure, not the release's
    with world.runtime.session() as s:
        assert len(s.exec(select(IdempotencyKey)).all()) == 1  # left behind, unfinished
    assert authorize(world, patient, headers=key).status_code == 409  # in flight, for now
    _backdate_claims(world, 11)
    r = authorize(world, patient, headers=key)
    assert r.status_code == 201 and r.json["decision"] == "approved"
    with world.runtime.session() as s:
        assert len(s.exec(select(Authorization)).all()) == 1
    assert authorize(world, patient, headers=key).data == r.data


def test_a_claim_whose_transaction_failed_is_released_at_once(world, monkeypatch):
    patient = ready_patient(world)
    key = {"Idempotency-Key": "rx-fail"}

    def fail(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))

    with monkeypatch.context() as m:
        m.setattr(authorization_service, "_decide", fail)
        assert authorize(world, patient, headers=key).status_code == 503
    r = (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post("/api/v1/authorizations", json={**AUTH_BODY, "patient_id": patient["id"]}, headers=key)
    )
    assert r.status_code == 201
