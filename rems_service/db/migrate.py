"""Alembic, driven from code: ``rems db upgrade`` and the tests call these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError

from .engine import normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The databases a PostgreSQL server has from the start, tried in turn to create ours from.
MAINTENANCE_DATABASES = ("postgres", "template1")


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be reached or created; the message says what to do."""


def _first_line(exc: BaseException) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip()
    return detail.splitlines()[0] if detail else type(exc).__name__


def _can_connect(url: URL) -> DBAPIError | None:
    """None when ``url`` accepts a connection, else the error."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()


def ensure_database(url: str) -> bool:
    """Make the database of ``url`` exist; True if this call created it.

    SQLite: the file's folder is created (SQLite creates the file). PostgreSQL: when
    the database does not accept a connection, connect to the server's default
    database with the same credentials and ``CREATE DATABASE`` it if it is missing.
    Raises ``DatabaseUnavailable`` naming the server (never the password) and what
    to do when the server cannot be reached or the role may not create databases."""
    target = make_url(normalize_url(url))
    backend = target.get_backend_name()
    if backend == "sqlite":
        if target.database and target.database != ":memory:":
            Path(target.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        return False
    if backend != "postgresql":
        return False
    shown = target.render_as_string(hide_password=True)
    refused = _can_connect(target)
    if refused is None:
        return False
    name = target.database or ""
    server_error: DBAPIError = refused
    for maintenance in MAINTENANCE_DATABASES:
        server = create_engine(target.set(database=maintenance), isolation_level="AUTOCOMMIT")
        try:
            with server.connect() as conn:
                if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                    # It exists: the first error was not about a missing database.
                    raise DatabaseUnavailable(f"cannot connect to {shown}: {_first_line(refused)}")
                try:
                    conn.execute(text(f"CREATE DATABASE {conn.dialect.identifier_preparer.quote(name)}"))
                except DBAPIError as exc:
                    if _can_connect(target) is None:
                        return False  # another process created it meanwhile
                    raise DatabaseUnavailable(
                        f"database {name!r} does not exist and could not be created on the server of {shown} "
                        f"({_first_line(exc)}); create it (e.g. `createdb {name}`) or point DATABASE_URL at one"
                    ) from None
            return True
        except DBAPIError as exc:
            server_error = exc
        finally:
            server.dispose()
    raise DatabaseUnavailable(f"cannot connect to {shown}: {_first_line(server_error)}")


def alembic_config(url: str | None = None, engine: Engine | None = None) -> Config:
    """An alembic ``Config`` for our migrations; pass an engine to reuse its connections."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine=engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine=engine), revision)


def current_revision(engine: Engine) -> Any:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
