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


# --- Least-privilege roles on PostgreSQL (README, "Audit chain") ----------------------------

#: What the service's role may do on each table; every other table of the schema gets
#: ``SERVICE_DEFAULT``. The audit log's rows can only be added and read: its own database
#: user can neither change nor remove them, nor alter the table or its triggers (only the
#: owner can).
SERVICE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "audit_entries": ("SELECT", "INSERT"),
    "audit_reason_codes": ("SELECT", "INSERT"),
    "audit_subject_refs": ("SELECT", "INSERT"),
    "audit_checkpoints": ("SELECT", "INSERT"),
    "audit_chain_head": ("SELECT", "UPDATE"),
    "alembic_version": ("SELECT",),
}
SERVICE_DEFAULT = ("SELECT", "INSERT", "UPDATE", "DELETE")


class RoleSetupError(RuntimeError):
    """The roles cannot be set up as asked; the message says what to do."""


def secure_roles(engine: Engine, service_role: str | None) -> dict[str, Any]:
    """Make the role ``engine`` connects as own every table, sequence and function of the
    schema, and grant ``service_role`` only what the service needs (``SERVICE_PRIVILEGES``;
    sequences: USAGE and SELECT). Idempotent: ``rems db upgrade`` runs it after every
    migration, so tables added later get their grants too.

    ``service_role`` None or the owner itself: nothing is separated (one role for
    everything, as before; the report says so). Refused, naming the fix: a service role
    that does not exist, is a superuser, may act as the owner, or owns the schema (a schema
    owner may drop the audit table). SQLite: nothing to do."""
    if engine.dialect.name != "postgresql":
        return {"separated": False, "reason": f"{engine.dialect.name} has no roles"}
    with engine.begin() as conn:
        owner, schema = conn.execute(text("SELECT current_user, current_schema()")).one()
        if not service_role or service_role == owner:
            return {
                "owner": owner,
                "service_role": owner,
                "separated": False,
                "note": "the service's own role owns audit_entries and can switch its triggers off; "
                "set REMS_DATABASE_OWNER_URL (README, Audit chain)",
            }
        quote = conn.dialect.identifier_preparer.quote
        role = conn.execute(
            text("SELECT rolsuper, pg_has_role(oid, :owner, 'USAGE') FROM pg_roles WHERE rolname = :r"),
            {"r": service_role, "owner": owner},
        ).first()
        if role is None:
            raise RoleSetupError(
                f"the service role {service_role!r} does not exist; create it first "
                f"(e.g. `CREATE ROLE {quote(service_role)} LOGIN PASSWORD '...'`)"
            )
        if role[0]:
            raise RoleSetupError(f"the service role {service_role!r} is a superuser: it would bypass every grant")
        if role[1]:
            raise RoleSetupError(
                f"the service role {service_role!r} is a member of the owner {owner!r}: it could act as the owner"
            )
        schema_owner = conn.execute(
            text(
                "SELECT pg_has_role(:r, nspowner, 'USAGE') OR pg_has_role(:r, (SELECT datdba FROM pg_database "
                "WHERE datname = current_database()), 'USAGE') FROM pg_namespace WHERE nspname = :s"
            ),
            {"r": service_role, "s": schema},
        ).scalar()
        if schema_owner:
            raise RoleSetupError(
                f"the service role {service_role!r} owns the schema {schema!r} (or the database): "
                "it could drop the audit table; make the owner role own them"
            )
        svc = quote(service_role)
        tables = conn.execute(
            text("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = :s ORDER BY tablename"),
            {"s": schema},
        ).all()
        sequences = conn.execute(
            text(
                "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind = 'S' ORDER BY c.relname"
            ),
            {"s": schema},
        ).all()
        functions = conn.execute(
            text(
                "SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n "
                "ON n.oid = p.pronamespace WHERE n.nspname = :s AND p.proname LIKE 'rems\\_%'"
            ),
            {"s": schema},
        ).all()
        moved = []
        try:
            for name, current in tables:
                if current != owner:
                    conn.execute(text(f"ALTER TABLE {quote(name)} OWNER TO {quote(owner)}"))
                    moved.append(name)
            for name, current in sequences:
                if current != owner:  # a sequence owned by a column follows its table already
                    conn.execute(text(f"ALTER SEQUENCE {quote(name)} OWNER TO {quote(owner)}"))
            for signature, current in functions:
                if current != owner:
                    conn.execute(text(f"ALTER FUNCTION {signature} OWNER TO {quote(owner)}"))
        except DBAPIError as exc:
            raise RoleSetupError(
                f"{owner!r} cannot take over the tables ({_first_line(exc)}); once, as a superuser, run "
                f"`REASSIGN OWNED BY <their owner> TO {quote(owner)}` in this database, then upgrade again"
            ) from None
        conn.execute(text(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {svc}"))
        conn.execute(text(f"REVOKE CREATE ON SCHEMA {quote(schema)} FROM {svc}"))
        granted = {}
        for name, _ in tables:
            privileges = SERVICE_PRIVILEGES.get(name, SERVICE_DEFAULT)
            conn.execute(text(f"REVOKE ALL ON TABLE {quote(name)} FROM {svc}"))
            conn.execute(text(f"GRANT {', '.join(privileges)} ON TABLE {quote(name)} TO {svc}"))
            granted[name] = list(privileges)
        for name, _ in sequences:
            conn.execute(text(f"REVOKE ALL ON SEQUENCE {quote(name)} FROM {svc}"))
            conn.execute(text(f"GRANT USAGE, SELECT ON SEQUENCE {quote(name)} TO {svc}"))
    return {
        "owner": owner,
        "service_role": service_role,
        "separated": True,
        "ownership_taken": moved,
        "audit_entries": granted.get("audit_entries", []),
    }
