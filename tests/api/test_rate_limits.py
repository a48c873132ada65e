"""Issue 18 item 4: rate limits (Flask-Limiter; in memory when embedded, on Redis with a queue).

429 with Retry-After after the limit; the right credential works again after the window.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import Blueprint, request
from flask_limiter import RequestLimit
from prometheus_client import REGISTRY

from rems_service import ratelimit
from tests.helpers import authorize, make_user, ready_patient

LIMITS = {"RATE_LIMIT_FAILED_AUTH": "5 per minute", "RATE_LIMIT_DECISIONS": "3 per minute"}


@pytest.fixture
def app(make_app):
    return make_app(**LIMITS)


def _retry_after(r) -> int:
    value = int(r.headers["Retry-After"])
    assert value > 0
    return value


def test_failed_authentications_per_address_then_429_and_the_right_token_works_after_the_window(world):
    api = world.api
    refusals = {"limit": "auth_failures_per_address"}
    before = REGISTRY.get_sample_value("rems_rate_limit_refusals_total", refusals) or 0.0
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for i in range(5):
            assert api.as_(f"rems_wrong{i}").get("/api/v1/me").status_code == 401
        r = api.as_("rems_wrong-again").get("/api/v1/me")
        assert r.status_code == 429 and r.json["code"] == 429 and "rate_limit" in r.json["errors"]
        assert _retry_after(r) <= 60
        assert r.headers["X-RateLimit-Limit"] == "5" and r.headers["X-RateLimit-Remaining"] == "0"
        # The right token from the same address is refused too while the window lasts...
        assert api.as_(world.admin).get("/api/v1/me").status_code == 429
        assert REGISTRY.get_sample_value("rems_rate_limit_refusals_total", refusals) - before == 2  # counted
        # ...but another address is not affected.
        other = api.client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {world.admin}"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
        )
        assert other.status_code == 200
        clock.shift(timedelta(seconds=61))
        assert api.as_(world.admin).get("/api/v1/me").status_code == 200


def test_successful_requests_do_not_count_as_failures(world):
    with time_machine.travel(datetime.now(UTC), tick=False):
        for _ in range(12):
            ok = world.api.as_(world.admin).get("/api/v1/me")
            # No limit headers on an answered request (they would cost a counter read each).
            assert ok.status_code == 200 and "Retry-After" not in ok.headers
        assert world.api.as_("rems_wrong").get("/api/v1/me").status_code == 401


def test_decisions_per_token(world):
    patient = ready_patient(world)
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for _ in range(3):
            assert authorize(world, patient).status_code == 201
        r = authorize(world, patient)
        assert r.status_code == 429 and _retry_after(r) <= 60
        # Another token, and the same token's other requests, are not limited by it.
        other, other_token = make_user(world.runtime, "prescriber", prescriber_id=world.prescriber.id)
        assert authorize(world, patient, token=other_token).status_code == 201
        assert world.api.as_(world.prescriber_token).get("/api/v1/authorizations").status_code == 200
        clock.shift(timedelta(seconds=61))
        assert authorize(world, patient).status_code == 201


def _sign_in_app(app):
    """A stand-in for the portal's sign-in view: it uses the limits as the portal does."""
    bp = Blueprint("test_sign_in", __name__)

    @bp.route("/test-sign-in", methods=["POST"])
    @ratelimit.sign_in_limits
    def sign_in():
        if request.form.get("password") != "correct horse battery":
            ratelimit.record_failed_sign_in()
            return "refused", 200
        return "welcome", 200

    app.register_blueprint(bp)
    return app.test_client()


def test_failed_sign_ins_per_email(make_app):
    client = _sign_in_app(make_app(RATE_LIMIT_FAILED_SIGN_IN="3 per minute", RATE_LIMIT_FAILED_AUTH="50 per minute"))
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for _ in range(3):
            assert client.post("/test-sign-in", data={"email": "a@example.org", "password": "x"}).data == b"refused"
        r = client.post("/test-sign-in", data={"email": " A@Example.org", "password": "correct horse battery"})
        assert r.status_code == 429 and _retry_after(r) <= 60
        # Another email from the same address is not locked out by the first one's failures.
        assert client.post("/test-sign-in", data={"email": "b@example.org", "password": "x"}).status_code == 200
        clock.shift(timedelta(seconds=61))
        r = client.post("/test-sign-in", data={"email": "a@example.org", "password": "correct horse battery"})
        assert r.status_code == 200 and r.data == b"welcome"


def test_limits_live_in_redis_and_keys_carry_no_secret(make_app, redis_url):
    import redis

    app = make_app(REDIS_URL=redis_url, RATE_LIMIT_FAILED_AUTH="3 per 2 seconds")
    with app.app_context():
        runtime = app.extensions["rems"]
        _user, token = make_user(runtime, "admin")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/me", headers={"Authorization": "Bearer rems_wrong"}).status_code == 401
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 429
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    assert any("rems-rate" in k for k in keys), keys
    assert not any("rems_wrong" in k or token in k for k in keys)
    time.sleep(_retry_after(r) + 0.2)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_decisions_still_work_when_the_limits_store_is_down(make_app):
    """Redis down: the limits are skipped (logged), never a failed decision."""
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0", **LIMITS)
    with app.app_context():
        _user, token = make_user(app.extensions["rems"], "admin")
    client = app.test_client()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/readyz").json["status"] == "degraded"


def test_a_429_keeps_its_retry_after_when_the_window_cannot_be_read(world, monkeypatch):
    """The limit's window is read from the storage for the 429's headers: if that read fails,
    the answer is still the 429 (Retry-After 60), never a 500."""

    def unreadable(self):
        raise ConnectionError("storage gone")

    with time_machine.travel(datetime.now(UTC), tick=False):
        for i in range(5):
            assert world.api.as_(f"rems_wrong{i}").get("/api/v1/me").status_code == 401
        monkeypatch.setattr(RequestLimit, "reset_at", property(unreadable))
        r = world.api.as_("rems_wrong-again").get("/api/v1/me")
    assert r.status_code == 429 and r.headers["Retry-After"] == "60"
