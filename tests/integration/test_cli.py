"""API.md, Command line: rems db upgrade, users create, demo seed, audit verify."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rems_service.cli import main


@pytest.fixture
def rems(monkeypatch, tmp_path):
    """Invoke ``rems`` against a fresh SQLite file, as a new installation would."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")

    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, (result.output, result.stderr if hasattr(result, "stderr") else "")
        return result

    return run


def test_upgrade_seed_and_verify(rems):
    from alembic.script import ScriptDirectory

    from rems_service.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert json.loads(rems("db", "upgrade").stdout) == {"revision": head}
    seeded = json.loads(rems("demo", "seed").stdout)
    assert seeded["seeded"] is True
    assert set(seeded["users"]) == {"admin", "prescriber", "pharmacist", "auditor"}
    assert all(u["token"].startswith("rems_") for u in seeded["users"].values())
    # A second seed refuses (the tokens cannot be shown again) ...
    rems("demo", "seed", code=1)
    # ... and --if-empty is a no-op for `make run`.
    assert json.loads(rems("demo", "seed", "--if-empty").stdout)["seeded"] is False
    verified = json.loads(rems("audit", "verify").stdout)
    assert verified["valid"] is True and verified["checked"] > 0


def test_seeded_tokens_work_against_the_api(rems, monkeypatch):
    rems("db", "upgrade")
    seeded = json.loads(rems("demo", "seed").stdout)
    from rems_service import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {seeded['users']['admin']['token']}"}
    r = client.get(f"/api/v1/prescribers/{seeded['prescriber_id']}", headers=headers)
    assert r.status_code == 200 and r.json["status"] == "certified"
    r = client.get(
        f"/api/v1/pharmacies/{seeded['pharmacy_id']}",
        headers={"Authorization": f"Bearer {seeded['users']['pharmacist']['token']}"},
    )
    assert r.status_code == 200 and r.json["status"] == "certified"
    app.extensions["rems"].engine.dispose()


def test_users_create_prints_id_and_token(rems):
    rems("db", "upgrade")
    seeded = json.loads(rems("demo", "seed").stdout)
    out = json.loads(rems("users", "create", "--name", "Ops", "--role", "admin").stdout)
    assert set(out) == {"id", "token"}
    out = json.loads(
        rems(
            "users",
            "create",
            "--name",
            "P",
            "--role",
            "pharmacist",
            "--pharmacy-id",
            seeded["pharmacy_id"],
            "--trained",
        ).stdout
    )
    assert out["token"]


def test_users_create_refuses_a_pharmacist_without_pharmacy(rems):
    rems("db", "upgrade")
    result = rems("users", "create", "--name", "P", "--role", "pharmacist", code=2)
    assert "pharmacy_id" in result.stderr


def test_audit_verify_exits_1_on_a_broken_chain(rems, monkeypatch):
    rems("db", "upgrade")
    rems("demo", "seed")
    import os
    import sqlite3

    path = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        # As only someone with the database file (not the service) could.
        conn.execute("DROP TRIGGER audit_entries_no_update")
        conn.execute("UPDATE audit_entries SET action = 'forged' WHERE seq = 3")
    verified = json.loads(rems("audit", "verify", code=1).stdout)
    assert verified["valid"] is False and verified["first_invalid_seq"] == 3
