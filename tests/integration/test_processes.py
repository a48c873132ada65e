"""The service as real processes: the ``rems`` script, then gunicorn with two workers."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.integration.server import BIN, ROOT, fetch, gunicorn


@pytest.fixture
def served(database_url, tmp_path):
    """Migrate, seed and start gunicorn on this test's database; yield (base url, seed)."""
    env = {**os.environ, "DATABASE_URL": database_url, "REMS_ENV": "development"}
    env.pop("REDIS_URL", None)
    subprocess.run([BIN / "rems", "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT)
    seed = subprocess.run(
        [BIN / "rems", "demo", "seed", "--if-empty"], env=env, check=True, capture_output=True, text=True, cwd=ROOT
    )
    with gunicorn(database_url, tmp_path / "gunicorn.log") as base:
        yield base, json.loads(seed.stdout)


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
