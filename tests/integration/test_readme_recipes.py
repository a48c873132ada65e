"""The README's recipes, run as written on a copy of the project (issue 17, Must show 4).

Each fenced ``sh`` block after a ``<!-- readme-test: NAME -->`` marker is run with
bash in a fresh copy of the project (the files a clone has: tracked and not
ignored): the ``honcho`` recipe against a PostgreSQL database that does not exist
yet (``rems db upgrade`` must create it) and the machine's Redis, until the web
process answers ``/readyz`` and the worker and cron are running and quiet when
idle; then the ``sandbox-server`` and ``sandbox-client`` recipes, whose output the
README states in comments.

What is not fresh: the copy's ``.venv`` is a folder whose ``bin/`` is this test
run's virtual environment and whose install stamp is newer than ``pyproject.toml``
(so ``make install`` has nothing to do: a new environment would need the network
and minutes), and ``PYTHONPATH`` puts the copy's code first, so the copy's code,
Procfile and configuration are what run. The recipes choose their own ports and
URLs from ``PORT``, ``DATABASE_URL`` and ``REDIS_URL`` when set, which is how the
test gives them free ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.integration.server import BIN, ROOT, call, free_port

RECIPE = re.compile(r"<!-- readme-test: ([a-z-]+) -->\s*\n```sh\n(.*?)\n```", re.DOTALL)
#: How long a recipe's server may take to answer /readyz.
START_SECONDS = 60


def readme_recipes(readme: Path = ROOT / "README.md") -> dict[str, str]:
    return dict(RECIPE.findall(readme.read_text(encoding="utf-8")))


def test_readme_marks_the_recipes_it_promises():
    assert set(readme_recipes()) >= {"honcho", "sandbox-server", "sandbox-client"}


def _project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A copy of the project as a clone has it, with a ready virtual environment."""
    if not (ROOT / ".git").exists():  # pragma: no cover - the test runs in a checkout
        pytest.skip("not a git checkout")
    copy = tmp_path / "clone"
    for name in _project_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    venv = copy / ".venv"
    venv.mkdir()
    (venv / "bin").symlink_to(BIN, target_is_directory=True)
    stamp = venv / ".installed-stamp"
    stamp.touch()
    past = time.time() - 3600
    os.utime(copy / "pyproject.toml", (past, past))
    return copy


def _env(clone: Path, **values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REMS_", "PYTEST_"))}
    for key in ("DATABASE_URL", "REDIS_URL", "PORT", "VIRTUAL_ENV", "CI"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(clone)
    env.update(values)
    return env


@contextmanager
def background(recipe: str, clone: Path, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        ["bash", "-e", "-c", recipe], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def wait_until_ready(port: int, proc: subprocess.Popen[bytes], log_path: Path) -> dict:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            status, raw, _ = call("GET", f"http://127.0.0.1:{port}/readyz", timeout=5)
            if status == 200:
                return json.loads(raw)
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
        time.sleep(0.3)


def wait_for(predicate, what: str, log_path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not seen:\n{log_path.read_text(errors='replace')}"
        time.sleep(0.2)


@pytest.fixture
def new_database_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database name that does not exist yet (dropped afterwards)."""
    url = make_url(postgres_url).set(database=f"rems_readme_{uuid.uuid4().hex[:10]}")
    yield url.render_as_string(hide_password=False)
    admin = create_engine(make_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def _lines_of(text_: str, process: str) -> list[str]:
    return [line for line in text_.splitlines() if re.match(rf"^\S+ {re.escape(process)}\s+\| ", line)]


def test_readme_recipes_bring_up_honcho_and_the_sandbox(clone, new_database_url, redis_url, tmp_path):
    from redis import Redis
    from rq import Worker

    recipes = readme_recipes(clone / "README.md")

    # 1. `honcho start` on a database that does not exist yet.
    port = free_port()
    log_path = tmp_path / "honcho.log"
    env = _env(clone, DATABASE_URL=new_database_url, REDIS_URL=redis_url, PORT=str(port))
    with background(recipes["honcho"], clone, env, log_path) as honcho:
        ready = wait_until_ready(port, honcho, log_path)
        assert ready["environment"] == "development"
        assert ready["checks"] == {"database": "ok", "redis": "ok"}
        log = lambda: log_path.read_text(errors="replace")  # noqa: E731
        assert '"created": true' in log(), log()  # `rems db upgrade` created the database
        assert '"seeded": true' in log(), log()
        for process in ("web", "worker", "cron"):
            started = lambda p=process: any("rems.startup" in line for line in _lines_of(log(), f"{p}.1"))  # noqa: E731
            wait_for(started, f"{process}'s start-up line", log_path)
        banner = next(line for line in _lines_of(log(), "web.1") if "rems.startup" in line)
        assert "environment development" in banner and f"127.0.0.1:{port}" in banner
        assert make_url(new_database_url).database in banner and "queue 'rems'" in banner
        # cron's first sweep relays the seed's events: the worker logs what it did, once.
        wait_for(lambda: "outbox relay: events handed to the queue" in log(), "the relay's line", log_path)
        client = Redis.from_url(redis_url)
        wait_for(lambda: any("rems" in w.queue_names() for w in Worker.all(connection=client)), "worker", log_path)
        client.close()
        # Idle: the relay runs every second, and neither the worker nor cron writes a line.
        time.sleep(1.5)
        before = log()
        time.sleep(3)
        idle = log()[len(before) :]
        assert not _lines_of(idle, "worker.1") and not _lines_of(idle, "cron.1"), idle
        assert honcho.poll() is None, log()

    # 2. The sandbox: its own database file, JSON logs, X-Rems-Now.
    port = free_port()
    log_path = tmp_path / "sandbox.log"
    env = _env(clone, PORT=str(port))
    with background(recipes["sandbox-server"], clone, env, log_path) as server:
        ready = wait_until_ready(port, server, log_path)
        assert ready["environment"] == "sandbox"
        client_run = subprocess.run(
            ["bash", "-e", "-c", recipes["sandbox-client"]],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert client_run.returncode == 0, client_run.stderr + log_path.read_text(errors="replace")
        assert client_run.stdout.split() == ["sandbox", "2026-03-01T09:05:00+00:00", "certified", "expired"], (
            client_run.stdout,
            client_run.stderr,
        )
        startup = [line for line in log_path.read_text().splitlines() if '"rems.startup"' in line]
        assert startup and json.loads(startup[0])["message"].startswith("web on 127.0.0.1:")
        assert "environment sandbox" in json.loads(startup[0])["message"]
    assert (clone / "instance" / "rems-sandbox.sqlite3").exists()
    assert not (clone / "instance" / "rems.sqlite3").exists(), "the sandbox must not use the development file"
