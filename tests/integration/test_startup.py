"""Start-up refuses unsafe configuration with a clear message."""

from __future__ import annotations

import runpy

import pytest

from config.programs import PROGRAMS_DIR
from config.settings import ConfigurationError, banner, load_settings
from rems_service import create_app
from workflows.errors import ProgramDefinitionError


def test_incomplete_program_refuses_to_start(tmp_path):
    source = sorted(PROGRAMS_DIR.glob("lenalidomide-*.toml"))[0]
    broken = tmp_path / source.name
    broken.write_text(source.read_text().replace("max_days_supply = 28", ""))
    with pytest.raises(ProgramDefinitionError, match="max_days_supply is missing"):
        create_app({"PROGRAM_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})


def test_unknown_environment_refuses_to_start(monkeypatch):
    monkeypatch.setenv("REMS_ENV", "staging")
    with pytest.raises(ConfigurationError, match="REMS_ENV"):
        create_app()


def test_production_needs_a_database_url(monkeypatch):
    monkeypatch.setenv("REMS_ENV", "production")
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        create_app()


def test_default_database_is_sqlite_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("REMS_ENV", "development")
    app = create_app()
    try:
        assert app.config["DATABASE_URL"].startswith("sqlite:///")
        assert app.config["DATABASE_URL"].endswith("instance/rems.sqlite3")
    finally:
        app.extensions["rems"].engine.dispose()


def test_the_sandbox_has_a_database_file_of_its_own(monkeypatch):
    monkeypatch.setenv("REMS_ENV", "sandbox")
    app = create_app()
    try:
        assert app.config["DATABASE_URL"].endswith("instance/rems-sandbox.sqlite3")
    finally:
        app.extensions["rems"].engine.dispose()


@pytest.mark.parametrize(
    ("env", "expected"), [("development", "text"), ("test", "text"), ("sandbox", "json"), ("production", "json")]
)
def test_log_format_defaults_per_environment_and_is_configurable(env, expected):
    environ = {"REMS_ENV": env, "DATABASE_URL": "postgresql://db/rems"}
    assert load_settings(environ)["LOG_FORMAT"] == expected
    other = {"text": "json", "json": "text"}[expected]
    assert load_settings({**environ, "REMS_LOG_FORMAT": other.upper()})["LOG_FORMAT"] == other
    with pytest.raises(ConfigurationError, match="REMS_LOG_FORMAT"):
        load_settings({**environ, "REMS_LOG_FORMAT": "xml"})


def test_banner_names_environment_database_and_queue_without_secrets():
    settings = load_settings(
        {
            "REMS_ENV": "production",
            "DATABASE_URL": "postgresql+psycopg://rems:db-secret@db.internal:5432/rems",
            "REDIS_URL": "redis://default:redis-secret@cache.internal:6379/2",
        }
    )
    line = banner(settings, "/unused", "web on 127.0.0.1:8000")
    assert line == (
        "web on 127.0.0.1:8000: environment production, database postgresql+psycopg://rems:***@db.internal:5432/rems, "
        "queue 'rems' on redis://default:***@cache.internal:6379/2"
    )
    inline = banner(load_settings({"REMS_ENV": "development"}), "/srv/instance", "web")
    assert (
        inline
        == "web: environment development, database sqlite:////srv/instance/rems.sqlite3, jobs inline (no REDIS_URL)"
    )


@pytest.mark.parametrize(
    ("environ", "bind"),
    [
        ({}, "127.0.0.1:8000"),
        ({"PORT": "9001"}, "127.0.0.1:9001"),
        ({"PORT": "9001", "REMS_BIND": "0.0.0.0:8080"}, "0.0.0.0:8080"),
    ],
)
def test_gunicorn_binds_loopback_unless_configured(monkeypatch, environ, bind):
    for key in ("PORT", "REMS_BIND"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    settings = runpy.run_path(str(PROGRAMS_DIR.parents[1] / "config" / "gunicorn.py"))
    assert settings["bind"] == bind
    # gunicorn's own lines go through the service's handler, its access log stays off.
    assert settings["logconfig_dict"]["handlers"]["rems"]["()"] == "rems_service.logs.stderr_handler"


def test_readyz_names_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REMS_ENV", "sandbox")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'ready.sqlite3'}"})
    try:
        body = app.test_client().get("/readyz").json
        assert body["environment"] == "sandbox" and body["status"] == "ready"
    finally:
        app.extensions["rems"].engine.dispose()


def test_database_errors_never_show_the_statements_parameters(tmp_path):
    """No PHI in logs: an error raised by the database names the statement, not its values."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from rems_service.db.engine import build_engine

    engine = build_engine(f"sqlite:///{tmp_path / 'phi.sqlite3'}")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (name TEXT NOT NULL UNIQUE)"))
            conn.execute(text("INSERT INTO t (name) VALUES (:name)"), {"name": "Jane Doe 1960-01-01"})
            try:
                conn.execute(text("INSERT INTO t (name) VALUES (:name)"), {"name": "Jane Doe 1960-01-01"})
            except DBAPIError as exc:
                assert "Jane Doe" not in str(exc) and "hidden due to hide_parameters" in str(exc)
            else:  # pragma: no cover
                raise AssertionError("the duplicate was not refused")
    finally:
        engine.dispose()
