"""Background work against the machine's real Redis and real `rq worker` processes,
on PostgreSQL (issue "events and jobs", must show 1–4).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from rems_service import create_app
from rems_service.db.models import OutboxEvent, ProcessedEvent, WebhookAttempt, WebhookDelivery
from rems_service.jobs import tasks
from rems_service.jobs.dispatch import background_for
from rems_service.jobs.relay import relay_outbox
from tests.helpers import TRAINED, Api, make_pharmacy, make_prescriber, make_user, signature_ok
from tests.integration.server import BIN, ROOT
from tests.receiver import Receiver

AUTH = {
    "days_supply": 28,
    "quantity": 28,
    "strength_mg": 25,
    "prescriber_survey": {"counseled_on_risks": True, "contraception_confirmed": True},
}
MALE = {
    "first_name": "Job",
    "last_name": "Runner",
    "date_of_birth": "1961-02-03",
    "risk_category": "MALE_ADULT",
    "ppaf_signed": True,
    "counseling_completed": True,
}
WORKER_ENV = {
    "REMS_WEBHOOK_BACKOFF_SECONDS": "1",
    "REMS_WEBHOOK_LEASE_SECONDS": "2",
    "REMS_WEBHOOK_TIMEOUT_SECONDS": "3",
}


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def worker_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "REMS_ENV": "development", **WORKER_ENV}
    env["REMS_WEBHOOK_ALLOW_LOOPBACK"] = "1"  # the tests' receivers listen on loopback
    return env


def run_burst_worker(database_url: str, redis_url: str, timeout: float = 60) -> None:
    subprocess.run(
        [
            BIN / "rq",
            "worker",
            "-w",
            "rems_service.jobs.worker.RemsWorker",
            "--burst",
            "--with-scheduler",
            "--serializer",
            "rems_service.jobs.serialization.JobSerializer",
            "--url",
            redis_url,
            "rems",
        ],
        env=worker_env(database_url, redis_url),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=timeout,
    )


class Program:
    """A certified prescriber, a certified pharmacy with a trained pharmacist, an admin; an API client."""

    def __init__(self, database_url: str, redis_url: str | None):
        self.app = create_app(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "RELAY_AFTER_REQUEST": True,
                "WEBHOOK_ALLOW_LOOPBACK": True,  # the tests' receivers listen on loopback
                **{k.removeprefix("REMS_"): float(v) if "TIMEOUT" in k else int(v) for k, v in WORKER_ENV.items()},
            }
        )
        self.runtime = self.app.extensions["rems"]
        self.prescriber = make_prescriber(self.runtime)
        self.pharmacy = make_pharmacy(self.runtime)
        self.prescriber_token = make_user(self.runtime, "prescriber", prescriber_id=self.prescriber.id)[1]
        self.pharmacist_token = make_user(
            self.runtime, "pharmacist", pharmacy_id=self.pharmacy.id, training_completed_at=TRAINED
        )[1]
        self.admin = make_user(self.runtime, "admin")[1]
        self.api = Api(self.app.test_client())

    def subscribe(self, url: str, events: list[str]) -> dict:
        r = self.api.as_(self.admin).post("/api/v1/webhooks", json={"url": url, "events": events})
        assert r.status_code == 201, r.json
        return r.json

    def authorize_and_dispense(self, at: datetime) -> tuple[dict, dict]:
        patient = self.api.as_(self.prescriber_token).at(at).post("/api/v1/patients", json=MALE).json
        self.api.as_(self.prescriber_token).at(at).post(
            f"/api/v1/patients/{patient['id']}/surveys",
            json={
                "completed_at": (at - timedelta(hours=1)).isoformat(),
                "answers": {"shared_capsules": False, "donated_blood": False},
            },
        )
        auth = (
            self.api.as_(self.prescriber_token)
            .at(at)
            .post("/api/v1/authorizations", json={**AUTH, "patient_id": patient["id"]})
            .json
        )
        assert auth["decision"] == "approved", auth
        body = {
            "authorization_number": auth["authorization_number"],
            "rems_patient_id": patient["rems_patient_id"],
            "days_supply": 28,
            "quantity": 28,
            "counseling": {"medication_guide_provided": True, "checklist_completed": True},
        }
        disp = self.api.as_(self.pharmacist_token).at(at).post("/api/v1/dispenses", json=body).json
        assert disp["decision"] == "approved", disp
        # The relay after each request runs on a background thread: wait for it.
        assert background_for(self.runtime).wait_idle(30)
        return auth, disp

    def close(self) -> None:
        self.runtime.engine.dispose()


@pytest.fixture
def program(postgres_url, redis_url):
    p = Program(postgres_url, redis_url)
    yield p
    p.close()


def test_issued_authorization_is_delivered_by_a_real_worker_with_a_valid_signature(
    program, postgres_url, redis_url, receiver
):
    hook = program.subscribe(receiver.url, ["authorization.issued"])
    auth, _ = program.authorize_and_dispense(datetime.now(UTC))
    with program.runtime.session() as s:
        assert all(e.sent_at is not None for e in s.exec(select(OutboxEvent)).all()), (
            "the request relayed its events to Redis"
        )
    run_burst_worker(postgres_url, redis_url)
    assert receiver.wait_for(1, timeout=10)
    (got,) = receiver.received
    assert (
        signature_ok(hook["secret"], got) and got.body["data"]["authorization_number"] == auth["authorization_number"]
    )


def test_a_receiver_failing_twice_gets_exactly_one_successful_delivery(program, postgres_url, redis_url, receiver):
    receiver.statuses = [500, 502]
    hook = program.subscribe(receiver.url, ["authorization.issued"])
    program.authorize_and_dispense(datetime.now(UTC))
    # A long-running worker with its scheduler, as in the Procfile: the scheduler puts
    # each retry back on the queue when its backoff is over.
    worker = subprocess.Popen(
        [
            BIN / "rq",
            "worker",
            "-w",
            "rems_service.jobs.worker.RemsWorker",
            "--with-scheduler",
            "--serializer",
            "rems_service.jobs.serialization.JobSerializer",
            "--url",
            redis_url,
            "rems",
        ],
        env=worker_env(postgres_url, redis_url),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with program.runtime.session() as s:
                row = s.exec(select(WebhookDelivery)).first()
            if row is not None and row.status == "delivered":
                break
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert row.status == "delivered" and row.attempts == 3
    assert [r.headers["X-Rems-Delivery"] for r in receiver.received] == [str(row.id)] * 3
    log = program.api.as_(program.admin).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"][0]["log"]
    assert [a["status_code"] for a in log] == [500, 502, 200]
    assert log[1]["attempted_at"] > log[0]["attempted_at"]


def test_with_redis_down_decisions_succeed_and_events_wait_in_the_outbox(postgres_url, redis_url, receiver):
    down = Program(postgres_url, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        down.subscribe(receiver.url, ["authorization.issued", "dispense.approved"])
        for _ in range(3):
            down.runtime.relay_state.paused_until = 0.0  # let every request try (and fail) to relay
            down.authorize_and_dispense(datetime.now(UTC))
        with down.runtime.session() as s:
            events = s.exec(select(OutboxEvent)).all()
        assert events and all(e.sent_at is None for e in events)
        assert any(e.attempts > 0 and "Connection" in (e.last_error or "") for e in events)
    finally:
        down.close()
    # Redis is back: the relay (cron's job) hands every event on, a worker handles each once.
    up = create_app({"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}).extensions["rems"]
    try:
        while relay_outbox(up):
            pass
        relay_outbox(up)  # a second relay finds nothing
        run_burst_worker(postgres_url, redis_url)
        with up.session() as s:
            events = s.exec(select(OutboxEvent)).all()
            processed = s.exec(select(ProcessedEvent)).all()
        assert all(e.sent_at is not None for e in events)
        assert len(processed) == len(events)
        assert receiver.wait_for(6, timeout=10)
        time.sleep(0.5)
        ids = [r.body["id"] for r in receiver.received]
        assert len(ids) == 6 and len(set(ids)) == 6, "every event delivered, none twice"
    finally:
        up.engine.dispose()


def test_a_worker_killed_mid_job_loses_no_obligation(program, postgres_url, redis_url, receiver):
    receiver.stall = 10  # the first delivery hangs: the worker is killed meanwhile
    program.subscribe(receiver.url, ["authorization.issued"])
    program.authorize_and_dispense(datetime.now(UTC))
    worker = subprocess.Popen(
        [
            BIN / "rq",
            "worker",
            "-w",
            "rems_service.jobs.worker.RemsWorker",
            "--serializer",
            "rems_service.jobs.serialization.JobSerializer",
            "--url",
            redis_url,
            "rems",
        ],
        env=worker_env(postgres_url, redis_url),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert receiver.arrived.wait(30), "the worker started the delivery"
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work horse, mid-request
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:  # pragma: no cover
            os.killpg(worker.pid, signal.SIGKILL)
    receiver.stall = 0
    with program.runtime.session() as s:
        row = s.exec(select(WebhookDelivery)).one()
    assert row.status == "pending" and row.attempts == 1  # claimed, never finished
    lease = timedelta(seconds=int(WORKER_ENV["REMS_WEBHOOK_LEASE_SECONDS"]))
    report = tasks.run_sweeps(program.runtime, datetime.now(UTC) + lease + timedelta(seconds=1))
    # With a queue the sweep hands the due attempt to a worker (a slow receiver never holds
    # up the sweeps): once the dead worker's lease is over, a worker posts it.
    assert report.get("webhook_attempts_queued") == 1 and not report.get("webhook_attempts")
    time.sleep(lease.total_seconds() + 1)
    # A worker posts it; on a loaded machine that attempt can still fall inside a lease or time
    # out, and its retry is scheduled (backoff 1 s): later bursts run that retry.
    for _burst in range(4):
        run_burst_worker(postgres_url, redis_url)
        with program.runtime.session() as s:
            row = s.exec(select(WebhookDelivery)).one()
            attempts = s.exec(select(WebhookAttempt)).all()
        if row.status == "delivered":
            break
        time.sleep(lease.total_seconds() + 1)
    assert row.status == "delivered" and row.attempts >= 2
    # A worker's retry delivered it. (The killed attempt is logged too if its work horse outlived
    # the kill long enough to time out: the sweep now waits for the lease before a worker retries.)
    by_number = {a.attempt: a for a in attempts}
    assert by_number[row.attempts].outcome == "delivered"
    assert len({r.body["id"] for r in receiver.received}) == 1  # at-least-once: the receiver dedupes on id


def test_with_no_worker_every_decision_is_right_at_every_expiry_edge(program):
    """Jobs are scheduled in Redis but no worker ever runs: nothing depends on them."""
    t0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
    auth, disp = program.authorize_and_dispense(t0)
    number, confirmation = auth["authorization_number"], disp["confirmation_number"]
    api = program.api.as_(program.pharmacist_token)
    # The confirmation holds the authorization until exactly 24 h, then lapses.
    assert (
        api.at(t0 + timedelta(hours=24) - timedelta(seconds=1)).get(f"/api/v1/dispenses/{confirmation}").json["status"]
        == "confirmed"
    )
    assert api.at(t0 + timedelta(hours=24)).get(f"/api/v1/dispenses/{confirmation}").json["status"] == "lapsed"
    assert (
        api.at(t0 + timedelta(hours=24)).post(f"/api/v1/dispenses/{confirmation}/complete", json={}).status_code == 409
    )
    assert api.at(t0 + timedelta(hours=24)).get(f"/api/v1/authorizations/{number}").json["status"] == "issued"
    # The authorization (MALE: 30 days) is valid to the microsecond before its end.
    body = {
        "authorization_number": number,
        "rems_patient_id": auth["rems_patient_id"],
        "days_supply": 28,
        "quantity": 28,
        "counseling": {"medication_guide_provided": True, "checklist_completed": True},
    }
    late = api.at(t0 + timedelta(days=30)).post("/api/v1/dispenses", json=body).json
    assert [r["code"] for r in late["reasons"]] == ["AUTHORIZATION_EXPIRED"]
    # (the survey is 29 days old by then, which the dispense rules do not read)
    just_in_time = api.at(t0 + timedelta(days=30) - timedelta(seconds=1)).post("/api/v1/dispenses", json=body).json
    assert just_in_time["decision"] == "approved", just_in_time
    r = json.loads(json.dumps(just_in_time))
    assert r["confirmation_expires_at"]


def test_per_entity_jobs_are_scheduled_with_deterministic_ids_and_are_idempotent(program, postgres_url, redis_url):
    from redis import Redis
    from rq import Queue
    from rq.registry import ScheduledJobRegistry
    from rq.serializers import JSONSerializer

    from rems_service.db.models import Authorization, Dispense
    from rems_service.jobs import handlers
    from rems_service.jobs.dispatch import bound

    auth, disp = program.authorize_and_dispense(datetime.now(UTC))
    run_burst_worker(postgres_url, redis_url)  # handles the events: schedules the follow-ups
    with program.runtime.session() as s:
        auth_row = s.exec(select(Authorization)).one()
        dispense_row = s.exec(select(Dispense)).one()
    connection = Redis.from_url(redis_url)
    queue = Queue("rems", connection=connection, serializer=JSONSerializer)
    scheduled = set(ScheduledJobRegistry(queue=queue).get_job_ids())
    assert {
        f"authorization-expiry-{auth_row.id}",
        f"authorization-expiring-{auth_row.id}",
        f"dispense-lapse-{dispense_row.id}",
    } <= scheduled
    assert any(j.startswith(f"patient-survey-due-{auth_row.patient_id}-") for j in scheduled)
    # Enqueued by reference: RQ stored each job function's import path, and JSON ids as arguments.
    expiry = queue.fetch_job(f"authorization-expiry-{auth_row.id}")
    assert expiry.func_name == "rems_service.jobs.handlers.expire_authorization"
    assert expiry.args == [str(auth_row.id)]
    # A job that runs early (or twice) changes nothing: the windows are not over yet.
    with bound(program.runtime):
        assert handlers.expire_authorization(str(auth_row.id)) is False
        assert handlers.lapse_confirmation(str(dispense_row.id)) is False
    connection.close()


def test_cron_jobs_are_read_and_run_by_the_worker(postgres_url, redis_url, monkeypatch, tmp_path):
    """rq 3.0's cron enqueues with pickle whatever ``--serializer`` says; the worker's
    JobSerializer reads those plain-values payloads and runs every registered cron job
    without a failure. Nothing in rq is patched: ``rq.cron.Queue`` is rq's own."""
    import rq.cron
    from redis import Redis
    from rq.cron import CronScheduler
    from rq.job import Job, JobStatus

    from rems_service.jobs.serialization import JobSerializer

    queue_class = rq.cron.Queue  # type: ignore[attr-defined]
    connection = Redis.from_url(redis_url)
    scheduler = CronScheduler(connection=connection)
    scheduler.load_config_from_file(str(ROOT / "config" / "cron.py"))  # as `rq cron` does
    assert rq.cron.Queue is queue_class  # type: ignore[attr-defined]
    enqueued = [cron_job.enqueue(connection) for cron_job in scheduler.get_jobs()]
    assert {job.func_name for job in enqueued} == {
        "rems_service.jobs.tasks.run_sweeps",
        "rems_service.jobs.tasks.relay",
        "rems_service.jobs.tasks.publish_audit_anchor",
    }
    monkeypatch.setenv("REMS_AUDIT_ANCHOR_DIR", str(tmp_path / "anchors"))  # the worker's anchor directory
    run_burst_worker(postgres_url, redis_url)
    # The audit anchor was published outside the database (the migrations left an empty chain).
    (published,) = (tmp_path / "anchors").glob("anchor-000000000000-*.json")
    assert json.loads(published.read_text())["seq"] == 0
    for job in enqueued:
        job = Job.fetch(job.id, connection=connection, serializer=JobSerializer)
        assert job.get_status() == JobStatus.FINISHED, (job.func_name, job.get_status(), job.exc_info)
