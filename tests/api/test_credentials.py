"""Issue 18 item 3: containing a leaked credential (API.md, Users).

Disable, enable and token replacement take effect on the very next request;
tokens may expire; admins list users. Each change is in the audit log.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import time_machine

from rems_service.db.models import AuditEntry
from tests.helpers import make_user


def _user_id(world, token):
    return world.api.as_(token).get("/api/v1/me").json["id"]


def _actions(world):
    from sqlmodel import select

    with world.runtime.uow() as uow:
        return [e.action for e in uow.session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()]


def test_disabled_users_tokens_stop_on_the_next_request_and_enable_restores_them(world):
    pharmacist = _user_id(world, world.pharmacist_token)
    admin = world.api.as_(world.admin)
    assert world.api.as_(world.pharmacist_token).get("/api/v1/dispenses").status_code == 200

    r = admin.post(f"/api/v1/users/{pharmacist}/disable")
    assert r.status_code == 200, r.json
    assert r.json["disabled"] is True and r.json["disabled_at"] and "token" not in r.json
    refused = world.api.as_(world.pharmacist_token).get("/api/v1/dispenses")
    assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]
    # Every operation, write or read, is refused.
    assert world.api.as_(world.pharmacist_token).post("/api/v1/webhooks", json={}).status_code == 401
    # Disabling again changes nothing (one audit entry).
    again = admin.post(f"/api/v1/users/{pharmacist}/disable")
    assert again.status_code == 200 and again.json["disabled_at"] == r.json["disabled_at"]

    enabled = admin.post(f"/api/v1/users/{pharmacist}/enable")
    assert enabled.status_code == 200 and enabled.json["disabled"] is False and enabled.json["disabled_at"] is None
    assert world.api.as_(world.pharmacist_token).get("/api/v1/dispenses").status_code == 200
    assert _actions(world).count("user.disabled") == 1 and _actions(world)[-1] == "user.enabled"


def test_token_replacement_kills_the_old_token_at_once(world):
    prescriber = _user_id(world, world.prescriber_token)
    r = world.api.as_(world.admin).post(f"/api/v1/users/{prescriber}/token")
    assert r.status_code == 200, r.json
    assert r.json["id"] == prescriber and r.json["token"] != world.prescriber_token
    assert r.json["token_expires_at"] is None
    assert world.api.as_(world.prescriber_token).get("/api/v1/patients").status_code == 401
    assert world.api.as_(r.json["token"]).get("/api/v1/patients").status_code == 200
    assert _actions(world)[-1] == "user.token_rotated"
    # The new token is shown once: the listing never carries a token.
    listed = world.api.as_(world.admin).get("/api/v1/users?limit=200").json["items"]
    assert all("token" not in item and "token_hash" not in item for item in listed)
    assert next(u for u in listed if u["id"] == prescriber)["token_rotated_at"]


def test_tokens_expire(world):
    auditor = _user_id(world, world.auditor)
    expires = datetime.now(UTC) + timedelta(hours=1)
    r = world.api.as_(world.admin).post(f"/api/v1/users/{auditor}/token", json={"expires_at": expires.isoformat()})
    assert r.status_code == 200 and r.json["token_expires_at"]
    token = r.json["token"]
    assert world.api.as_(token).get("/api/v1/audit/verify").status_code == 200
    with time_machine.travel(expires + timedelta(seconds=1), tick=False):
        assert world.api.as_(token).get("/api/v1/audit/verify").status_code == 401
        # A sandbox clock header never revives an expired token.
        assert world.api.as_(token).at(expires - timedelta(hours=2)).get("/api/v1/audit/verify").status_code == 401


def test_an_expiry_in_the_past_is_refused(world):
    admin = world.api.as_(world.admin)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    auditor = _user_id(world, world.auditor)
    r = admin.post(f"/api/v1/users/{auditor}/token", json={"expires_at": past})
    assert r.status_code == 422 and "expires_at" in r.json["errors"]
    assert world.api.as_(world.auditor).get("/api/v1/audit/verify").status_code == 200  # nothing changed
    r = admin.post("/api/v1/users", json={"name": "Temp", "role": "auditor", "token_expires_at": past})
    assert r.status_code == 422 and "token_expires_at" in r.json["errors"]


def test_created_token_with_expiry(world):
    expires = datetime.now(UTC) + timedelta(days=30)
    r = world.api.as_(world.admin).post(
        "/api/v1/users", json={"name": "Contractor", "role": "auditor", "token_expires_at": expires.isoformat()}
    )
    assert r.status_code == 201 and r.json["token_expires_at"]
    with time_machine.travel(expires + timedelta(seconds=1), tick=False):
        assert world.api.as_(r.json["token"]).get("/api/v1/audit/verify").status_code == 401


def test_admin_lists_users_in_pages(world):
    admin = world.api.as_(world.admin)
    first = admin.get("/api/v1/users?limit=3")
    assert first.status_code == 200 and len(first.json["items"]) == 3 and first.json["next_cursor"]
    second = admin.get(f"/api/v1/users?limit=200&cursor={first.json['next_cursor']}")
    ids = [u["id"] for u in first.json["items"] + second.json["items"]]
    assert len(ids) == len(set(ids)) == 6 and second.json["next_cursor"] is None
    assert {u["role"] for u in first.json["items"] + second.json["items"]} == {
        "admin",
        "auditor",
        "prescriber",
        "pharmacist",
    }
    assert all(u["disabled"] is False for u in second.json["items"])


def test_only_admins_manage_credentials(world):
    target = _user_id(world, world.auditor)
    for token in (world.prescriber_token, world.pharmacist_token, world.auditor):
        caller = world.api.as_(token)
        assert caller.get("/api/v1/users").status_code == 403
        assert caller.post(f"/api/v1/users/{target}/disable").status_code == 403
        assert caller.post(f"/api/v1/users/{target}/enable").status_code == 403
        assert caller.post(f"/api/v1/users/{target}/token").status_code == 403
    assert world.api.as_(world.auditor).get("/api/v1/audit/verify").status_code == 200


def test_unknown_user_is_404_and_an_admin_cannot_disable_itself(world):
    admin = world.api.as_(world.admin)
    missing = uuid.uuid4()
    for action in ("disable", "enable", "token"):
        assert admin.post(f"/api/v1/users/{missing}/{action}").status_code == 404
    me = _user_id(world, world.admin)
    r = admin.post(f"/api/v1/users/{me}/disable")
    assert r.status_code == 409
    assert admin.get("/api/v1/users").status_code == 200


def test_a_disabled_user_is_not_an_active_user(world):
    """The repository read behind every portal session refuses a disabled user (bearer tokens:
    ``actor_by_token_hash``, tested above)."""
    user, _token = make_user(world.runtime, "auditor")
    with world.runtime.uow() as uow:
        assert uow.repo.actor_by_user_id(user.id) is not None
    assert world.api.as_(world.admin).post(f"/api/v1/users/{user.id}/disable").status_code == 200
    with world.runtime.uow() as uow:
        assert uow.repo.actor_by_user_id(user.id) is None
