"""The command line's portal credentials (UI.md, "Sign-in"): rems users create --email
--password-stdin, and rems demo seed printing each demo user's email and password once."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rems_service.cli import main


@pytest.fixture
def rems(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")

    def run(*args: str, code: int = 0, stdin: str | None = None):
        result = CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    run("db", "upgrade")
    return run


def sign_in_works(email: str, password: str) -> bool:
    from rems_service import create_app
    from rems_service.services import users

    app = create_app()
    try:
        with app.app_context():
            return users.sign_in(app.extensions["rems"].read(), email, password) is not None
    finally:
        app.extensions["rems"].engine.dispose()


def test_users_create_reads_the_password_from_stdin(rems):
    out = json.loads(
        rems(
            "users",
            "create",
            "--name",
            "Ana",
            "--role",
            "auditor",
            "--email",
            "Ana@Example.org",
            "--password-stdin",
            stdin="a password of some length\n",
        ).stdout
    )
    assert out["email"] == "ana@example.org" and out["token"].startswith("rems_")
    assert "a password of some length" not in json.dumps(out)
    assert sign_in_works("ana@example.org", "a password of some length")
    assert not sign_in_works("ana@example.org", "a password of some length\n")


def test_users_create_refuses_a_short_password_an_email_without_one_and_a_taken_email(rems):
    short = rems(
        "users",
        "create",
        "--name",
        "B",
        "--role",
        "auditor",
        "--email",
        "b@example.org",
        "--password-stdin",
        stdin="short\n",
        code=2,
    )
    assert "password" in short.output
    alone = rems("users", "create", "--name", "B", "--role", "auditor", "--email", "b@example.org", code=2)
    assert "--password-stdin" in alone.output
    rems(
        "users",
        "create",
        "--name",
        "C",
        "--role",
        "auditor",
        "--email",
        "c@example.org",
        "--password-stdin",
        stdin="long enough password\n",
    )
    taken = rems(
        "users",
        "create",
        "--name",
        "D",
        "--role",
        "auditor",
        "--email",
        "C@EXAMPLE.ORG",
        "--password-stdin",
        stdin="long enough password\n",
        code=2,
    )
    assert "email" in taken.output


def test_demo_seed_prints_every_demo_users_email_and_password_once(rems):
    text = rems("demo", "seed", "--if-empty", "--output", "text").stdout
    assert "/login" in text
    credentials = [line.split() for line in text.splitlines() if "@demo.example.org" in line]
    assert len(credentials) == 4, text
    for email, word, password in credentials:
        assert word == "password" and len(password) >= 12
        assert sign_in_works(email, password)
    again = rems("demo", "seed", "--if-empty", "--output", "text").stdout
    assert "@demo.example.org" not in again and "password" not in again
