"""The alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from rems_service.db import migrate
from rems_service.db.engine import build_engine
from rems_service.db.models import metadata


def _diff(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)


def test_migrations_and_models_agree(database_url):
    engine = build_engine(database_url)
    try:
        assert migrate.current_revision(engine) is not None
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(database_url):
    engine = build_engine(database_url)
    try:
        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert _diff(engine) == []
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT seq, hash FROM audit_chain_head").all() == [(0, "0" * 64)]
    finally:
        engine.dispose()
