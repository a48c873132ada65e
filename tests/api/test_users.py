"""API.md, Users; tokens are random, stored hashed, shown once."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlmodel import select

from rems_service.db.models import User
from tests.helpers import audit_count


def create(world, body, token=None):
    return world.api.as_(token or world.admin).post("/api/v1/users", json=body)


def test_create_admin_returns_token_once_and_stores_only_its_hash(world):
    r = create(world, {"name": "Ops", "role": "admin"})
    assert r.status_code == 201, r.json
    body = r.json
    assert set(body) >= {"id", "name", "role", "prescriber_id", "pharmacy_id", "token"}
    assert body["role"] == "admin" and body["prescriber_id"] is None
    token = body["token"]
    assert len(token) >= 40
    with world.runtime.uow() as uow:
        user = uow.session.get(User, uuid.UUID(body["id"]))
        assert user.token_hash == hashlib.sha256(token.encode()).hexdigest()
        stored = " ".join(str(v) for v in user.model_dump().values())
        assert token not in stored
    # The new token works; nothing else reveals it again.
    assert world.api.as_(token).post("/api/v1/users", json={"name": "x", "role": "auditor"}).status_code == 201


def test_tokens_are_unique(world):
    tokens = {create(world, {"name": f"a{i}", "role": "auditor"}).json["token"] for i in range(5)}
    assert len(tokens) == 5


def test_pharmacist_with_training_date(world):
    r = create(
        world,
        {
            "name": "Pharm",
            "role": "pharmacist",
            "pharmacy_id": str(world.pharmacy.id),
            "training_completed_at": "2026-01-05T10:00:00+00:00",
        },
    )
    assert r.status_code == 201 and r.json["pharmacy_id"] == str(world.pharmacy.id)
    assert r.json["training_completed_at"].startswith("2026-01-05T10:00:00")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "role": "prescriber"}, "prescriber_id"),
        ({"name": "x", "role": "pharmacist"}, "pharmacy_id"),
        ({"name": "x", "role": "prescriber", "prescriber_id": "00000000-0000-4000-8000-000000000000"}, "prescriber_id"),
        ({"name": "x", "role": "pharmacist", "pharmacy_id": "00000000-0000-4000-8000-000000000000"}, "pharmacy_id"),
        ({"name": "x", "role": "admin", "pharmacy_id": "PHARMACY"}, "pharmacy_id"),
        ({"name": "x", "role": "auditor", "prescriber_id": "PRESCRIBER"}, "prescriber_id"),
        (
            {"name": "x", "role": "auditor", "training_completed_at": "2026-01-01T00:00:00+00:00"},
            "training_completed_at",
        ),
        (
            {
                "name": "x",
                "role": "pharmacist",
                "pharmacy_id": "PHARMACY",
                "training_completed_at": "2999-01-01T00:00:00+00:00",
            },
            "training_completed_at",
        ),
        (
            {
                "name": "x",
                "role": "pharmacist",
                "pharmacy_id": "PHARMACY",
                "training_completed_at": "2026-01-01T00:00:00",
            },
            "training_completed_at",
        ),
        ({"name": "x", "role": "superuser"}, "role"),
        ({"role": "admin"}, "name"),
        ({"name": "x", "role": "admin", "token": "mine"}, "token"),
        ({"name": "x", "role": "admin", "id": str(uuid.uuid4())}, "id"),
    ],
)
def test_invalid_users_are_422_and_write_nothing(world, body, field):
    body = {
        k: (str(world.pharmacy.id) if v == "PHARMACY" else str(world.prescriber.id) if v == "PRESCRIBER" else v)
        for k, v in body.items()
    }
    before = audit_count(world.runtime)
    with world.runtime.uow() as uow:
        users_before = len(uow.session.exec(select(User.id)).all())
    r = create(world, body)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]
    assert audit_count(world.runtime) == before
    with world.runtime.uow() as uow:
        assert len(uow.session.exec(select(User.id)).all()) == users_before


@pytest.mark.parametrize("who", ["auditor", "prescriber_token", "pharmacist_token"])
def test_only_admins_create_users(world, who):
    assert create(world, {"name": "x", "role": "admin"}, token=getattr(world, who)).status_code == 403


def test_user_creation_is_audited_without_names(world):
    r = create(world, {"name": "Very Unique Name", "role": "auditor"})
    from rems_service.db.audit_chain import iter_entries

    with world.runtime.uow() as uow:
        last = list(iter_entries(uow.session))[-1]
    assert last.action == "user.created" and last.subject["user_id"] == r.json["id"]
    assert "Very Unique Name" not in str(last.model_dump())
