"""Start-up refuses unsafe configuration with a clear message."""

from __future__ import annotations

import pytest

from config.programs import PROGRAMS_DIR
from config.settings import ConfigurationError
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
