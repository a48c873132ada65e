"""Fixtures shared by every test.

Database-backed tests run once per backend: SQLite always, and PostgreSQL
when reachable. With ``CI=true`` or ``REMS_REQUIRE_SERVICES=1`` an
unreachable PostgreSQL or Redis is a failure, never a skip. Each backend's
schema is built once per session by the real alembic migrations; each test
then starts from that clean schema (a copied SQLite file, or PostgreSQL
tables truncated).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["REMS_ENV"] = "test"
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
# A fixed audit key (entry MACs, anchor signatures) for every environment the tests build.
os.environ["REMS_AUDIT_KEY"] = "7e57" * 16
os.environ.pop("REMS_AUDIT_KEY_FILE", None)
# Anchors published by the processes tests start (cron) go to a folder of this test process,
# never into the project's instance/ folder.
os.environ["REMS_AUDIT_ANCHOR_DIR"] = tempfile.mkdtemp(prefix="rems-test-anchors-")
os.environ.pop("REMS_DATABASE_OWNER_URL", None)
os.environ.pop("REMS_DATABASE_SERVICE_ROLE", None)

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from rems_service import create_app
from rems_service.db import migrate
from rems_service.db.engine import build_engine
from rems_service.services.decisions import replay_all
from tests import logscan


def pytest_configure(config: pytest.Config) -> None:
    # Must-show 4 of issue 18: every log line of the session is scanned for the PHI tests used.
    logscan.configure(config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logscan.finish(session)


@pytest.fixture(autouse=True)
def _log_scan_capture() -> None:
    logscan.ensure_handler()


PG_URL = os.environ.get("REMS_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("CI", "").lower() == "true" or os.environ.get("REMS_REQUIRE_SERVICES") == "1"

#: Tables whose rows a test may leave behind (everything but alembic's).
TABLES = (
    "users",
    "prescribers",
    "pharmacies",
    "patients",
    "pregnancy_tests",
    "patient_surveys",
    "audit_entries",
    "outbox_events",
    "decisions",
    "authorizations",
    "dispenses",
    "idempotency_keys",
    "audit_reason_codes",
    "audit_checkpoints",
    "processed_events",
    "notices",
    "webhook_subscriptions",
    "webhook_deliveries",
    "webhook_attempts",
)


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is unreachable ({type(exc).__name__}: {exc})"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and services are required here (CI=true / REMS_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    engine = build_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test session (and xdist worker), migrated to head."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        _unavailable(f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)}", exc)
    name = f"rems_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = build_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def reset_postgres(url: str) -> None:
    """Empty every table and restart the audit chain, as a fresh migration leaves it."""
    engine = create_engine(url)
    with engine.begin() as conn:
        # The audit table refuses TRUNCATE by trigger (R-AUD-2); as a superuser the
        # test harness switches ordinary triggers off for this one transaction.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
        conn.execute(text("UPDATE audit_chain_head SET seq = 0, hash = :h WHERE id = 1"), {"h": "0" * 64})
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        path = tmp_path / "rems.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    reset_postgres(url)
    return url


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """For tests of PostgreSQL-only behaviour (row locks, concurrency)."""
    url = request.getfixturevalue("pg_database")
    reset_postgres(url)
    return url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The machine's real Redis, flushed around the test; each xdist worker gets a
    database of its own (a flush or a worker of one test session never touches another's)."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = REDIS_URL
    if worker.startswith("gw"):
        # Offset from the configured database, so two test sessions given different
        # REMS_TEST_REDIS_URL databases never flush each other's workers.
        base, _, number = REDIS_URL.rpartition("/")
        url = f"{base}/{(int(number or 0) + 1 + int(worker[2:])) % 16}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        _unavailable(f"Redis at {REDIS_URL}", exc)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def make_app(database_url: str) -> Iterator[Any]:
    """Build apps on this test's database; every engine is disposed afterwards."""
    apps = []

    def factory(**overrides: Any):
        app = create_app({"DATABASE_URL": database_url, **overrides})
        apps.append(app)
        return app

    yield factory
    try:
        if apps:
            assert_decisions_replay(apps[0].extensions["rems"])
    finally:
        for app in apps:
            app.extensions["rems"].engine.dispose()


def assert_decisions_replay(runtime: Any) -> None:
    """Issue 4, "replaying every decision made by the test suite reproduces its outcome":
    after every database test, each recorded decision is decided again from its
    stored snapshot and program version."""
    try:
        results = list(replay_all(runtime.uow(), runtime.program))
    except OperationalError:
        return  # the test took its database away on purpose; it recorded nothing
    mismatches = [r.as_dict() for r in results if not r.matches]
    assert not mismatches, f"{len(mismatches)} of {len(results)} decisions do not replay: {mismatches[:3]}"


@pytest.fixture
def app(make_app: Any):
    return make_app()


@pytest.fixture
def runtime(app: Any):
    return app.extensions["rems"]
