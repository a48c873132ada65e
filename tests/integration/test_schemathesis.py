"""Issue 18 item 10: schemathesis (every phase, stateful included) against the OpenAPI document.

The service runs as real gunicorn processes (``REMS_ENV=test``) on a database seeded
with the demo program; schemathesis' CLI runs with a pharmacist's, a prescriber's and
an admin's token, each within a time budget (``SCHEMATHESIS_SECONDS``), and the
test fails on any server error (5xx) or any response that does not match the
document (body schema, status code, content type, headers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.server import gunicorn

BIN = Path(sys.executable).parent
#: Seconds per token (three runs); fuzzing and stateful phases repeat until spent.
SECONDS = int(os.environ.get("SCHEMATHESIS_SECONDS", "20"))
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
)
PHASES = "examples,coverage,fuzzing,stateful"


def _seed(database_url: str) -> dict:
    """``rems db upgrade`` and ``rems demo seed``, as a deployment would run them."""
    env = {**os.environ, "DATABASE_URL": database_url, "REMS_ENV": "test"}
    env.pop("REDIS_URL", None)
    for args in (["db", "upgrade"], ["demo", "seed"]):
        done = subprocess.run([str(BIN / "rems"), *args], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _run(base: str, token: str, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{base}/api/v1/openapi.json",
            "--url",
            base,
            "--phases",
            PHASES,
            "--checks",
            ",".join(CHECKS),
            "--header",
            f"Authorization: Bearer {token}",
            "--max-time",
            str(SECONDS),
            "--max-examples",
            "25",
            "--request-timeout",
            "10",
            "--seed",
            "18",
            "--workers",
            "1",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=report.parent,  # its example database (.schemathesis/) stays out of the checkout
        timeout=SECONDS * 3 + 120,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
    seeded = _seed(database_url)
    users = seeded["users"]
    with gunicorn(database_url, tmp_path / "server.log", REMS_ENV="test") as base:
        # The pharmacist first: the admin's run may change users' credentials. Operations that
        # revoke a token or disable a user would end the admin's own run (they are tested
        # one by one in tests/api/test_credentials.py).
        pharmacist = _run(base, users["pharmacist"]["token"], tmp_path / "pharmacist.xml")
        # A prescriber too: the decisions' own caller (POST /authorizations, patients, tests).
        prescriber = _run(base, users["prescriber"]["token"], tmp_path / "prescriber.xml")
        admin = _run(
            base,
            users["admin"]["token"],
            tmp_path / "admin.xml",
            "--exclude-path-regex",
            r"^/api/v1/users/\{user_id\}/(token|disable)$",
        )
    failed = [
        f"schemathesis as {name}:\n{run.stdout[-15000:]}\n{run.stderr[-2000:]}"
        for name, run in (("pharmacist", pharmacist), ("prescriber", prescriber), ("admin", admin))
        if run.returncode != 0
    ]
    assert not failed, "\n".join(failed)
