"""API.md, Command line: rems db upgrade, users create, demo seed, audit verify."""

from __future__ import annotations

import json
import uuid

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
    upgraded = json.loads(rems("db", "upgrade").stdout)
    assert upgraded["revision"] == head and upgraded["created"] is False
    assert upgraded["database"].endswith("cli.sqlite3")
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


def test_jobs_sweep_prints_every_sweep_count_zero_included(rems):
    from rems_service.services.sweeps import SWEEP_KINDS

    rems("db", "upgrade")
    counts = json.loads(rems("jobs", "sweep").stdout)
    assert set(counts) == set(SWEEP_KINDS) and all(n == 0 for n in counts.values()), counts
    rems("demo", "seed")  # records events: the next sweep relays them, and still prints every count
    counts = json.loads(rems("jobs", "sweep").stdout)
    assert set(counts) == set(SWEEP_KINDS) and counts["events_relayed"] > 0, counts


def test_demo_seed_text_output_frames_the_tokens(rems):
    rems("db", "upgrade")
    out = rems("demo", "seed", "--if-empty", "--output", "text").stdout
    lines = out.splitlines()
    rules = [i for i, line in enumerate(lines) if set(line) == {"="}]
    assert len(rules) == 2, out
    framed = lines[rules[0] : rules[1]]
    tokens = [line.split()[1] for line in framed if line.split()[:1] in (["admin"], ["prescriber"], ["pharmacist"])]
    assert len(tokens) == 3 and all(t.startswith("rems_") for t in tokens), out
    again = rems("demo", "seed", "--if-empty", "--output", "text").stdout
    assert "already has users" in again and "rems_" not in again


def test_commands_on_an_unmigrated_database_say_what_to_run(rems):
    result = rems("demo", "seed", code=1)
    error = json.loads(result.stderr)["error"]
    assert "rems db upgrade" in error and "cli.sqlite3" in error
    assert "Traceback" not in result.output


def test_db_upgrade_names_an_unreachable_server_in_one_line(rems, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://ops:secret@127.0.0.1:1/rems")
    result = rems("db", "upgrade", code=1)
    (line,) = result.stderr.strip().splitlines()
    error = json.loads(line)["error"]
    assert "cannot connect to postgresql+psycopg://ops:***@127.0.0.1:1/rems" in error
    assert "secret" not in result.stderr


def test_db_upgrade_creates_a_missing_postgresql_database(rems, monkeypatch, postgres_url):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"rems_cli_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("DATABASE_URL", make_url(postgres_url).set(database=name).render_as_string(False))
    admin = create_engine(make_url(postgres_url), isolation_level="AUTOCOMMIT")
    try:
        first = json.loads(rems("db", "upgrade").stdout)
        assert first["created"] is True and first["database"].endswith(f"/{name}") and first["revision"]
        second = json.loads(rems("db", "upgrade").stdout)
        assert second == {**first, "created": False}
        assert json.loads(rems("demo", "seed").stdout)["seeded"] is True
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_db_upgrade_explains_a_database_it_may_not_create(rems, monkeypatch, postgres_url):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    role = f"rems_nocreate_{uuid.uuid4().hex[:8]}"
    server = make_url(postgres_url)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN NOCREATEDB"))
    try:
        url = server.set(username=role, password=None, database=f"{role}_db")
        monkeypatch.setenv("DATABASE_URL", url.render_as_string(False))
        result = rems("db", "upgrade", code=1)
        error = json.loads(result.stderr)["error"]
        assert f"database '{role}_db' does not exist and could not be created" in error
        assert "createdb" in error
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()
