"""Start the service as real gunicorn processes for a test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(
    method: str,
    url: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP request; returns (status, raw body, headers) for any status."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def fetch(url: str, token: str | None = None) -> tuple[int, dict]:
    status, raw, _ = call("GET", url, token)
    return status, json.loads(raw)


@contextmanager
def gunicorn(database_url: str, log_path: Path, **env_overrides: str) -> Iterator[str]:
    """Serve the app on ``database_url`` with gunicorn (2 workers unless overridden); yield its base URL."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REMS_ENV": "development",
        # Concurrency tests send many decisions per token and minute; the limits are tested
        # on their own (tests/api/test_rate_limits.py).
        "REMS_RATE_LIMIT_DECISIONS": "1000000 per minute",
        "REMS_RATE_LIMIT_FAILED_AUTH": "1000000 per minute",
        **env_overrides,
    }
    env.pop("REDIS_URL", None)
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [BIN / "gunicorn", "-c", "config/gunicorn.py"],
        env={"REMS_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", **env},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
                raise AssertionError(log_path.read_text())
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
