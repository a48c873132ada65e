"""Engine creation for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from workflows.audit import canonical_json

#: Execution option of a read-only unit of work on SQLite (``Runtime.read``).
READ_ONLY = "rems_read_only"

#: How long a SQLite writer waits for the database lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def build_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``url`` with the per-backend settings the service needs."""
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    # JSON columns hold canonical JSON (sorted keys, no whitespace): the text the
    # audit chain hashes, so verification on PostgreSQL can hash stored text as is.
    kwargs.setdefault("json_serializer", canonical_json)
    # A database error's text must never carry the statement's parameters into a log
    # (names, dates of birth, search terms are PHI).
    kwargs.setdefault("hide_parameters", True)
    if backend == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping round trip per checkout on the request path: a web request's first
    # statement (its authentication read) retries once on a fresh connection when it finds
    # the pooled one dropped (``auth``), and connections are recycled before servers or
    # proxies usually drop idle ones. Processes that serve no requests (the RQ worker)
    # keep the pre-ping.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 5)
    kwargs.setdefault("pool_timeout", 10)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on, WAL, and write transactions that take the lock up front.

    pysqlite begins transactions lazily, so two requests could both read the
    audit chain head and then collide on write. ``BEGIN IMMEDIATE`` takes
    the write lock at the start instead, which serializes units of work the
    way the row lock does on PostgreSQL.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A read (Runtime.read) takes no write lock: a deferred transaction.
        connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def database_now(session: Session) -> datetime:
    """The database server's current time (UTC), read inside the open transaction.

    On PostgreSQL ``clock_timestamp()`` is the real time of the call, not the
    transaction start, so entries appended under the chain lock are ordered.
    """
    if session.get_bind().dialect.name == "postgresql":
        value: datetime = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)
    raw: str = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.fromisoformat(raw).replace(tzinfo=UTC)


_CLOCK_KEY = "transaction_clock"


def transaction_clock(session: Session) -> datetime:
    """One database-clock reading per transaction: the first call reads it (or
    takes one ``remember_clock`` was given), later calls in the same
    transaction return it without a round trip."""
    transaction = session.get_transaction()
    cached = session.info.get(_CLOCK_KEY)
    if cached is not None and cached[0] is transaction:
        remembered: datetime = cached[1]
        return remembered
    value = database_now(session)
    session.info[_CLOCK_KEY] = (session.get_transaction(), value)
    return value


def remember_clock(session: Session, value: datetime) -> None:
    """Offer a database-clock reading made anyway (by the audit append) to ``transaction_clock``."""
    transaction = session.get_transaction()
    cached = session.info.get(_CLOCK_KEY)
    if cached is None or cached[0] is not transaction:
        session.info[_CLOCK_KEY] = (transaction, value)
