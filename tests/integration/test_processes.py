"""The service as real processes: the ``rems`` script, then gunicorn with two workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def served(database_url, tmp_path):
    """Migrate, seed and start gunicorn on this test's database; yield (base url, seed)."""
    env = {**os.environ, "DATABASE_URL": database_url, "REMS_ENV": "development"}
    env.pop("REDIS_URL", None)
    subprocess.run([BIN / "rems", "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT)
    seed = subprocess.run([BIN / "rems", "demo", "seed", "--if-empty"], env=env, check=True, capture_output=True, text=True, cwd=ROOT)
    seeded = json.loads(seed.stdout)
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w")
    proc = subprocess.Popen(
        [BIN / "gunicorn", "-c", "config/gunicorn.py"],
        env={**env, "REMS_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"},
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if fetch(base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError((tmp_path / "gunicorn.log").read_text())
            time.sleep(0.2)
        yield base, seeded
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_seeded_service_answers_over_http(served):
    base, seeded = served
    assert seeded["seeded"] is True
    admin = seeded["users"]["admin"]["token"]
    for _ in range(6):  # spread over both workers
        status, body = fetch(f"{base}/api/v1/prescribers/{seeded['prescriber_id']}", admin)
        assert status == 200 and body["status"] == "certified"
    status, body = fetch(f"{base}/api/v1/pharmacies/{seeded['pharmacy_id']}", seeded["users"]["auditor"]["token"])
    assert status == 403 and body["code"] == 403
    assert fetch(f"{base}/api/v1/openapi.json")[0] == 200
