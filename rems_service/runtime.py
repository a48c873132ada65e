"""The per-app runtime: engine, session factory, program definition, Redis.

Built once by ``init_app`` and kept in ``app.extensions["rems"]``; views
and CLI commands reach it with ``get_runtime()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy.engine import Engine
from sqlmodel import Session

from config.programs import load_program
from rems_service.db.engine import READ_ONLY, build_engine
from rems_service.db.uow import UnitOfWork
from workflows.program import Program


@dataclass
class Runtime:
    settings: dict[str, Any]
    engine: Engine
    program: Program
    _redis: Any = field(default=None, repr=False)
    _read_engine: Any = field(default=None, repr=False)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session)

    def read(self) -> UnitOfWork:
        """A unit of work for a single-statement read: autocommit on PostgreSQL (no
        BEGIN and ROLLBACK round trips), a deferred transaction on SQLite (no write
        lock). Never for a read-then-write or for reads that must agree with each other."""
        if self._read_engine is None:
            options = (
                {"isolation_level": "AUTOCOMMIT"} if self.engine.dialect.name == "postgresql" else {READ_ONLY: True}
            )
            self._read_engine = self.engine.execution_options(**options)
        return UnitOfWork(lambda: Session(self._read_engine, expire_on_commit=False))

    @property
    def redis_url(self) -> str | None:
        return self.settings.get("REDIS_URL")

    def redis(self) -> Any:
        """A client for ``REDIS_URL`` with short timeouts, or None when unconfigured."""
        if not self.redis_url:
            return None
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return self._redis


def init_app(app: Flask) -> Runtime:
    """Create the runtime. Loading the program first means a bad program file stops start-up."""
    program = load_program(app.config["PROGRAM_DIR"])
    url = app.config.get("DATABASE_URL")
    if not url:
        os.makedirs(app.instance_path, exist_ok=True)
        url = f"sqlite:///{os.path.join(app.instance_path, 'rems.sqlite3')}"
        app.config["DATABASE_URL"] = url
    runtime = Runtime(settings=dict(app.config), engine=build_engine(url), program=program)
    app.extensions["rems"] = runtime
    return runtime


def get_runtime() -> Runtime:
    return current_app.extensions["rems"]
