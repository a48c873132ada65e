"""Issue 18, item 1: the cap on live webhook subscriptions holds under concurrent requests
(PostgreSQL: the owner's row is locked while its subscriptions are counted)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from rems_service import create_app
from rems_service.services import users, webhook_targets, webhooks
from rems_service.services.errors import Conflict
from tests.helpers import make_prescriber, make_user

CAP = 3
CALLERS = 12


@pytest.fixture
def runtime_on_postgres(postgres_url, monkeypatch):
    monkeypatch.setattr(webhook_targets, "resolve", lambda host, port: ["93.184.215.14"])
    app = create_app({"DATABASE_URL": postgres_url, "WEBHOOK_MAX_SUBSCRIPTIONS": CAP})
    yield app.extensions["rems"]
    app.extensions["rems"].engine.dispose()


def test_simultaneous_subscriptions_of_one_owner_stop_at_the_cap(runtime_on_postgres):
    runtime = runtime_on_postgres
    prescriber = make_prescriber(runtime)
    token = make_user(runtime, "prescriber", prescriber_id=prescriber.id)[1]
    actor = users.authenticate(runtime.read(), token, datetime.now(UTC))
    assert actor is not None
    start = threading.Barrier(CALLERS)
    outcomes: list[str] = []

    def subscribe(n: int) -> None:
        start.wait()
        try:
            webhooks.create(
                runtime.uow(),
                actor,
                datetime.now(UTC),
                runtime.settings,
                url=f"https://hooks.partner.example/{n}",
                events=["authorization.issued"],
            )
            outcomes.append("created")
        except Conflict:
            outcomes.append("capped")

    threads = [threading.Thread(target=subscribe, args=(n,)) for n in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["capped"] * (CALLERS - CAP) + ["created"] * CAP
    with runtime.uow() as uow:
        assert uow.webhooks.live_count(prescriber_id=prescriber.id) == CAP
