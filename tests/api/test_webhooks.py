"""API.md, Webhooks, on the embedded default (no Redis: jobs run in-process):
subscriptions, signed deliveries, scoping, retries with backoff and the delivery log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from rems_service.db.models import OutboxEvent, ProcessedEvent, WebhookDelivery
from rems_service.jobs import tasks
from rems_service.jobs.dispatch import background_for
from rems_service.jobs.relay import relay_outbox
from rems_service.services import webhook_targets
from tests.helpers import ADULT_FRP, NOW, add_test, approved_authorization, dispense, enrolled, signature_ok
from tests.receiver import Receiver

#: A public address the fake resolver gives names (no DNS in tests).
PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """Names resolve to a public address, except those a test maps elsewhere."""
    answers: dict[str, list[str]] = {}
    monkeypatch.setattr(webhook_targets, "resolve", lambda host, port: answers.get(host, [PUBLIC_ADDRESS]))
    return answers


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def inline_world(world, make_app):
    """The world's database served by an app that relays after every request, as `make run` does,
    and lets the tests' receivers on loopback receive (the explicit development setting)."""
    app = make_app(RELAY_AFTER_REQUEST=True, WEBHOOK_ALLOW_LOOPBACK=True)
    world.api.client = app.test_client()
    world.runtime = app.extensions["rems"]
    return world


def settle(world):
    """Wait for the background relay and deliveries of the requests made so far."""
    assert background_for(world.runtime).wait_idle(30)


def subscribe(world, token, url, events):
    r = world.api.as_(token).post("/api/v1/webhooks", json={"url": url, "events": events})
    assert r.status_code == 201, r.json
    return r.json


def test_an_issued_authorization_is_delivered_signed(inline_world, receiver):
    world = inline_world
    hook = subscribe(world, world.prescriber_token, receiver.url, ["authorization.issued"])
    assert len(hook["secret"]) == 64 and hook["prescriber_id"] == str(world.prescriber.id)
    _, decision = approved_authorization(world)
    assert receiver.wait_for(1)
    settle(world)
    got = receiver.received[0]
    assert signature_ok(hook["secret"], got)
    assert (
        got.body["type"] == "authorization.issued"
        and got.body["data"]["authorization_number"] == decision["authorization_number"]
    )
    assert set(got.body) == {"id", "type", "occurred_at", "data"}
    log = world.api.as_(world.prescriber_token).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
    assert [(d["status"], d["attempts"], d["log"][0]["status_code"]) for d in log] == [("delivered", 1, 200)]
    assert log[0]["last_outcome"] == log[0]["log"][0]["outcome"] == "delivered"
    assert "secret" not in log[0]


def test_subscriptions_see_only_their_own_events(inline_world, receiver):
    world = inline_world
    other = Receiver()
    try:
        subscribe(world, world.other_prescriber_token, other.url, ["authorization.issued", "pregnancy.reported"])
        subscribe(world, world.other_pharmacist_token, other.url, ["dispense.approved"])
        mine = subscribe(world, world.pharmacist_token, receiver.url, ["dispense.approved"])
        patient, decision = approved_authorization(world)
        dispense(world, decision["authorization_number"], patient["rems_patient_id"])
        assert receiver.wait_for(1)
        assert other.received == []
        assert receiver.received[0].body["data"]["pharmacy_id"] == str(world.pharmacy.id)
        assert signature_ok(mine["secret"], receiver.received[0])
    finally:
        other.close()


def test_the_program_hears_of_every_pregnancy(inline_world, receiver):
    world = inline_world
    subscribe(world, world.admin, receiver.url, ["pregnancy.reported", "patient.halted"])
    patient = enrolled(world, ADULT_FRP)
    add_test(world, patient["id"], NOW - timedelta(hours=1), result="positive")
    assert receiver.wait_for(2)
    assert sorted(r.body["type"] for r in receiver.received) == ["patient.halted", "pregnancy.reported"]
    assert all("first_name" not in r.raw.decode() for r in receiver.received)


def test_failed_deliveries_are_retried_with_backoff_and_logged(inline_world, receiver):
    world = inline_world
    receiver.statuses = [500, 503]
    hook = subscribe(world, world.prescriber_token, receiver.url, ["authorization.issued"])
    approved_authorization(world)
    assert receiver.wait_for(1)
    settle(world)
    runtime = world.runtime
    base = runtime.settings["WEBHOOK_BACKOFF_SECONDS"]
    now = datetime.now(UTC)
    assert tasks.run_sweeps(runtime, now).get("webhook_attempts", 0) == 0  # not due yet
    tasks.run_sweeps(runtime, now + timedelta(seconds=base + 1))  # second attempt: 503
    tasks.run_sweeps(runtime, now + timedelta(seconds=base + 1))  # not due again yet (backoff doubled)
    tasks.run_sweeps(runtime, now + timedelta(seconds=4 * base))  # third attempt: 200
    tasks.run_sweeps(runtime, now + timedelta(seconds=100 * base))  # nothing left to do
    assert len(receiver.received) == 3 and len({r.body["id"] for r in receiver.received}) == 1
    (delivery,) = world.api.as_(world.prescriber_token).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in delivery["log"]] == [
        (1, 500, "refused"),
        (2, 503, "refused"),
        (3, 200, "delivered"),
    ]
    assert "error" not in delivery["log"][0] and "last_error" not in delivery  # raw errors: admins only


def test_gives_up_after_the_maximum_attempts(inline_world, receiver, monkeypatch):
    world = inline_world
    world.runtime.settings["WEBHOOK_MAX_ATTEMPTS"] = 2
    receiver.statuses = [500] * 5
    subscribe(world, world.prescriber_token, receiver.url, ["authorization.issued"])
    approved_authorization(world)
    settle(world)
    tasks.run_sweeps(world.runtime, datetime.now(UTC) + timedelta(days=1))
    tasks.run_sweeps(world.runtime, datetime.now(UTC) + timedelta(days=2))
    with world.runtime.session() as s:
        (row,) = s.exec(select(WebhookDelivery)).all()
    assert row.status == "failed" and row.attempts == 2 and len(receiver.received) == 2


def test_relaying_twice_delivers_once(inline_world, receiver):
    world = inline_world
    subscribe(world, world.prescriber_token, receiver.url, ["authorization.issued"])
    approved_authorization(world)
    assert receiver.wait_for(1)
    settle(world)
    with world.runtime.session() as s:
        for event in s.exec(select(OutboxEvent)).all():
            event.sent_at = None  # as if the relay crashed before marking them sent
            s.add(event)
        s.commit()
    relay_outbox(world.runtime)
    tasks.run_sweeps(world.runtime)
    assert len(receiver.received) == 1
    with world.runtime.session() as s:
        assert len(s.exec(select(ProcessedEvent)).all()) == len(s.exec(select(OutboxEvent)).all())


def test_deleting_a_subscription_stops_deliveries(inline_world, receiver):
    world = inline_world
    hook = subscribe(world, world.prescriber_token, receiver.url, ["authorization.issued"])
    assert (
        world.api.as_(world.other_prescriber_token).request("DELETE", f"/api/v1/webhooks/{hook['id']}").status_code
        == 404
    )
    assert world.api.as_(world.prescriber_token).request("DELETE", f"/api/v1/webhooks/{hook['id']}").status_code == 204
    approved_authorization(world)
    settle(world)
    assert receiver.received == []
    assert world.api.as_(world.prescriber_token).get(f"/api/v1/webhooks/{hook['id']}/deliveries").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "ftp://example.org/x", "events": ["authorization.issued"]}, "url"),
        ({"url": "not a url", "events": ["authorization.issued"]}, "url"),
        ({"url": "https://example.org/x", "events": []}, "events"),
        ({"url": "https://example.org/x", "events": ["authorization.exploded"]}, "events.0"),
        ({"url": "https://example.org/x", "events": ["authorization.issued"], "secret": "mine"}, "secret"),
    ],
)
def test_bad_subscriptions_are_422(world, body, field):
    r = world.api.as_(world.admin).post("/api/v1/webhooks", json=body)
    assert r.status_code == 422 and field in r.json["errors"], r.json


def test_auditors_may_not_subscribe_and_others_cannot_read_the_log(world):
    assert (
        world.api.as_(world.auditor)
        .post("/api/v1/webhooks", json={"url": "https://example.org/x", "events": ["authorization.issued"]})
        .status_code
        == 403
    )
    hook = subscribe(world, world.pharmacist_token, "https://example.org/x", ["dispense.approved"])
    assert (
        world.api.as_(world.other_pharmacist_token).get(f"/api/v1/webhooks/{hook['id']}/deliveries").status_code == 404
    )
    assert world.api.as_(world.admin).get(f"/api/v1/webhooks/{hook['id']}/deliveries").status_code == 200
