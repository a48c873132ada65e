"""`honcho start` runs the Procfile — web (gunicorn), worker (rq) and cron (rq cron) —
against PostgreSQL and Redis, and a request to the web process ends in a
delivered webhook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from tests.integration.server import BIN, ROOT, call, free_port
from tests.receiver import Receiver


def test_honcho_brings_up_web_worker_and_cron_and_delivers_a_webhook(postgres_url, redis_url, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "REMS_ENV": "development",
        "REMS_WEBHOOK_ALLOW_LOOPBACK": "1",  # the receiver listens on loopback
        "PORT": str(port),
        "REMS_BIND": f"127.0.0.1:{port}",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    seeded = json.loads(
        subprocess.run(
            [BIN / "rems", "demo", "seed"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
    )
    admin = seeded["users"]["admin"]["token"]
    receiver = Receiver()
    log_path = tmp_path / "honcho.log"
    log = open(log_path, "w")
    honcho = subprocess.Popen(
        [BIN / "honcho", "start", "-f", "Procfile"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                if call("GET", base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and honcho.poll() is None, log_path.read_text()
            time.sleep(0.3)
        status, raw, _ = call(
            "POST", base + "/api/v1/webhooks", admin, {"url": receiver.url, "events": ["prescriber.registered"]}
        )
        assert status == 201, raw
        status, raw, _ = call(
            "POST", base + "/api/v1/prescribers", admin, {"npi": "1245319599", "first_name": "Web", "last_name": "Hook"}
        )
        assert status == 201, raw
        assert receiver.wait_for(1, timeout=30), log_path.read_text()
        assert receiver.received[0].body["type"] == "prescriber.registered"
        assert receiver.received[0].body["data"]["npi"] == "1245319599"
        text = log_path.read_text()
        for process in ("web.1", "worker.1", "cron.1"):
            assert process in text, text
        # With a queue the web process does not relay: cron's relay job (run by the worker) handed
        # the event on and said so in one line; RQ's per-job lines are held at WARNING.
        assert "outbox relay: events handed to the queue" in text, text
        assert "exception raised while executing" not in text, text
        assert honcho.poll() is None, "no process of the Procfile exited"
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        try:
            honcho.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            os.killpg(honcho.pid, signal.SIGKILL)
        log.close()
        receiver.close()
