"""The per-app runtime: engine, session factory, program definition, Redis.

Built once by ``init_app`` and kept in ``app.extensions["rems"]``; views
and CLI commands reach it with ``get_runtime()``; RQ jobs reach it through
``rems_service.jobs.dispatch.job_runtime()``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app, g, has_app_context
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from config.programs import load_program
from config.settings import database_url, load_settings
from rems_service.db import audit_mac
from rems_service.db.engine import READ_ONLY, build_engine
from rems_service.db.uow import UnitOfWork
from workflows.program import Program

#: The import name of the web app (``create_app``): its instance folder is the runtime's.
APP_NAME = "rems_service"


@dataclass
class RelayState:
    """Whether requests may relay the outbox now. After a failed relay (Redis down)
    requests skip relaying for a while, so a dead queue does not add a connection
    timeout to every request; cron keeps trying meanwhile."""

    paused_until: float = 0.0  # on the time.monotonic() clock

    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def pause(self, seconds: float) -> None:
        self.paused_until = time.monotonic() + seconds


@dataclass
class Runtime:
    settings: dict[str, Any]
    engine: Engine
    program: Program
    relay_state: RelayState = field(default_factory=RelayState)
    #: The audit chain's key (entry MACs, anchor signatures), loaded once.
    audit_key: audit_mac.AuditKey | None = field(default=None, repr=False)
    #: Where signed audit anchors are published (a directory outside the database).
    anchor_dir: str = ""
    #: What other modules keep per runtime (the jobs' background threads).
    extensions: dict[str, Any] = field(default_factory=dict, repr=False)
    _redis_client: redis.Redis | None = field(default=None, repr=False)
    _read_engine: Engine | None = field(default=None, repr=False)

    def request_connection(self) -> Connection | None:
        """The one PostgreSQL connection of the current request, checked out of the pool on
        first use and given back when the request ends (``release_request_connection``), so
        authentication and every unit of work of a request share it: one checkout per request.

        None outside a request, on SQLite (a file: nothing to share), or while a unit of work
        holds it (a unit opened inside another gets a pooled session of its own, as before)."""
        if self.engine.dialect.name != "postgresql" or not has_app_context() or "rems_request" not in g:
            return None
        conn: Connection | None = g.get("rems_connection")
        if conn is not None and (conn.closed or conn.invalidated):
            self.release_request_connection()
            conn = None
        if conn is None:
            conn = g.rems_connection = self.engine.connect()
        if conn.in_transaction():
            return None
        return conn

    def release_request_connection(self) -> None:
        """Give the request's connection back to the pool (at teardown; after it was dropped)."""
        if not has_app_context():
            return
        conn: Connection | None = g.pop("rems_connection", None)
        if conn is not None:
            conn.close()

    def session(self) -> Session:
        conn = self.request_connection()
        if conn is not None:
            # The engine's own isolation level (the connection may come from an autocommit read).
            return Session(conn.execution_options(isolation_level=self.isolation_level), expire_on_commit=False)
        return Session(self.engine, expire_on_commit=False)

    @property
    def isolation_level(self) -> str:
        return str(self.engine.dialect.default_isolation_level or "READ COMMITTED")

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session)

    def read(self) -> UnitOfWork:
        """A unit of work for a single-statement read: autocommit on PostgreSQL (no
        BEGIN and ROLLBACK round trips), a deferred transaction on SQLite (no write
        lock). Never for a read-then-write or for reads that must agree with each other."""
        conn = self.request_connection()
        if conn is not None:
            autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
            return UnitOfWork(lambda: Session(autocommit, expire_on_commit=False))
        read_engine = self._read_engine
        if read_engine is None:
            options = (
                {"isolation_level": "AUTOCOMMIT"} if self.engine.dialect.name == "postgresql" else {READ_ONLY: True}
            )
            read_engine = self._read_engine = self.engine.execution_options(**options)
        return UnitOfWork(lambda: Session(read_engine, expire_on_commit=False))

    @property
    def redis_url(self) -> str | None:
        return self.settings.get("REDIS_URL")

    def redis(self) -> redis.Redis | None:
        """A client for ``REDIS_URL`` with short timeouts, or None when unconfigured."""
        if not self.redis_url:
            return None
        if self._redis_client is None:
            self._redis_client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return self._redis_client

    def after_fork(self) -> None:
        """Take this runtime over in a forked child (an RQ work horse): drop the pooled
        database connections inherited from the parent without closing them (they stay
        the parent's: SQLAlchemy's ``dispose(close=False)``) and the Redis client."""
        self.engine.dispose(close=False)
        self._read_engine = None
        self._redis_client = None


def build(settings: Mapping[str, Any], instance_path: str, serves_requests: bool = True) -> Runtime:
    """Create a runtime from settings. Loading the program first means a bad program file
    stops start-up. Without ``DATABASE_URL`` the embedded SQLite file in ``instance_path``.
    A runtime that serves no requests pings each pooled connection on checkout (the web
    app retries its first statement instead: ``build_engine``)."""
    program = load_program(settings["PROGRAM_DIR"])
    url = settings.get("DATABASE_URL")
    if not url:
        os.makedirs(instance_path, exist_ok=True)
        url = database_url(settings, instance_path)  # the environment's own SQLite file
    key = audit_mac.load_key(settings, instance_path)
    audit_mac.use_key(key)
    anchors = settings.get("AUDIT_ANCHOR_DIR") or os.path.join(instance_path, "audit-anchors")
    return Runtime(
        settings={**settings, "DATABASE_URL": url},
        engine=build_engine(url) if serves_requests else build_engine(url, pool_pre_ping=True),
        program=program,
        audit_key=key,
        anchor_dir=str(anchors),
    )


def build_standalone() -> Runtime:
    """The runtime of a process that serves no requests (the RQ worker): the same settings
    and instance folder as the web app, without building the app."""
    return build(load_settings(), Flask(APP_NAME).instance_path, serves_requests=False)


def init_app(app: Flask) -> Runtime:
    """Create the app's runtime and keep it in ``app.extensions["rems"]``; each request
    uses one database connection from its first statement to its end."""
    runtime = build(app.config, app.instance_path)
    app.config["DATABASE_URL"] = runtime.settings["DATABASE_URL"]
    app.extensions["rems"] = runtime

    @app.before_request
    def _one_connection() -> None:
        g.rems_request = True

    @app.teardown_request
    def _give_back(_exc: BaseException | None) -> None:
        runtime.release_request_connection()

    return runtime


def get_runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["rems"]
    return runtime
