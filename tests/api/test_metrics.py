"""Issue 18, "Operations you can see": /metrics (admins only unless METRICS_PUBLIC) exposes
decisions by endpoint, outcome and reason code, decision latency, the outbox's backlog,
webhook delivery outcomes and rate-limit refusals; /admin/queues shows the job queue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq import SimpleWorker

from rems_service import create_app, metrics
from rems_service.jobs.dispatch import RQDispatcher
from rems_service.jobs.handlers import handle_event
from rems_service.jobs.serialization import JobSerializer
from rems_service.services import users
from tests.helpers import ADULT_MALE, approved_authorization, authorize, dispense, enrolled
from workflows.actors import SYSTEM


def scrape(world, token=None):
    r = world.api.as_(token or world.admin).get("/metrics")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    samples = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_for_admins_only(world):
    assert world.api.get("/metrics").status_code == 401
    assert world.api.as_("rems_not-a-token").get("/metrics").status_code == 401
    for token in (world.prescriber_token, world.pharmacist_token, world.auditor):
        assert world.api.as_(token).get("/metrics").status_code == 403
    assert world.api.as_(world.admin).get("/metrics").status_code == 200


def test_metrics_may_be_opened_to_a_private_scraper(world, make_app):
    app = make_app(METRICS_PUBLIC=True)
    assert app.test_client().get("/metrics").status_code == 200


def test_counters_after_decisions(world):
    before = scrape(world)
    patient, decision = approved_authorization(world)
    denied = authorize(world, enrolled(world, ADULT_MALE))  # no survey yet: a denial
    assert denied.json["decision"] == "denied"
    reasons = [r["code"] for r in denied.json["reasons"]]
    assert dispense(world, decision["authorization_number"], patient["rems_patient_id"]).json["decision"] == "approved"
    after = scrape(world)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("rems_decisions_total", endpoint="authorizations", outcome="approved") == 1
    assert grew("rems_decisions_total", endpoint="authorizations", outcome="denied") == 1
    assert grew("rems_decisions_total", endpoint="dispenses", outcome="approved") == 1
    for code in reasons:
        assert grew("rems_decision_reasons_total", endpoint="authorizations", outcome="denied", reason=code) == 1
    assert grew("rems_decision_duration_seconds_count", endpoint="authorizations", outcome="approved") == 1
    assert grew("rems_decision_duration_seconds_count", endpoint="dispenses", outcome="approved") == 1
    # The outbox holds the events (no relay runs in these tests): its backlog is visible.
    assert value(after, "rems_outbox_unsent_events") > 0 and value(after, "rems_outbox_lag_seconds") >= 0


def test_an_idempotent_replay_is_not_counted_twice(world):
    patient = enrolled(world, ADULT_MALE)
    before = scrape(world)
    headers = {"Idempotency-Key": "metrics-replay-1"}
    first = authorize(world, patient, headers=headers)
    again = authorize(world, patient, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true" and first.json == again.json
    after = scrape(world)
    assert (
        value(after, "rems_decisions_total", endpoint="authorizations", outcome="denied")
        - value(before, "rems_decisions_total", endpoint="authorizations", outcome="denied")
        == 1
    )


def test_rate_limit_refusals_and_webhook_outcomes_are_exposed(world):
    before = scrape(world)
    metrics.rate_limit_refused("auth_failures_per_address")
    metrics.WEBHOOK_DELIVERIES.labels(outcome="timed_out").inc()
    after = scrape(world)
    assert (
        value(after, "rems_rate_limit_refusals_total", limit="auth_failures_per_address")
        - value(before, "rems_rate_limit_refusals_total", limit="auth_failures_per_address")
        == 1
    )
    assert (
        value(after, "rems_webhook_deliveries_total", outcome="timed_out")
        - value(before, "rems_webhook_deliveries_total", outcome="timed_out")
        == 1
    )


def test_the_queue_page_is_for_admins(world):
    assert world.api.get("/admin/queues").status_code == 401
    assert world.api.as_(world.pharmacist_token).get("/admin/queues").status_code == 403
    r = world.api.as_(world.admin).get("/admin/queues")
    assert r.status_code == 200 and r.json == {"mode": "inline", "queues": [], "workers": [], "failed_jobs": []}


@pytest.mark.postgres_only
def test_the_queue_page_reads_rq(postgres_url, redis_url):
    app = create_app({"DATABASE_URL": postgres_url, "REDIS_URL": redis_url})
    try:
        runtime = app.extensions["rems"]
        _, admin = users.create_user(runtime.uow(), SYSTEM, datetime.now(UTC), name="ops", role="admin")
        dispatcher = RQDispatcher.for_runtime(runtime)
        # A job that fails: run by a worker with no runtime installed ("no runtime for this job").
        dispatcher.enqueue(handle_event, "00000000-0000-0000-0000-000000000001", job_id="fails")
        SimpleWorker([dispatcher.queue], connection=runtime.redis(), serializer=JobSerializer).work(burst=True)
        dispatcher.enqueue(handle_event, "00000000-0000-0000-0000-000000000000", job_id="q1")
        r = app.test_client().get("/admin/queues", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.json
        (queue,) = r.json["queues"]
        assert r.json["mode"] == "rq" and queue["name"] == runtime.settings["QUEUE_NAME"]
        assert (queue["queued"], queue["failed"]) == (1, 1)
        (failed,) = r.json["failed_jobs"]
        assert failed["id"] == "fails" and failed["function"].endswith("handle_event")
        assert failed["args"] == ["00000000-0000-0000-0000-000000000001"] and failed["error"] == "RuntimeError"
    finally:
        app.extensions["rems"].engine.dispose()
