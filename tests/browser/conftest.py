"""The portal in real Chromium (Debian's ``chromium``, driven by Playwright for Python).

One live server (the app in a thread, on a migrated SQLite file) and one browser
serve the whole session; each test gets a fresh browser context (no cookies),
whose requests carry the sandbox clock header ``X-Rems-Now: NOW`` so the pages
are evaluated at the same instant as the helpers' API scenarios. Each test makes
its own patients and authorizations through the API (``portal.world``), so
tests do not depend on one another.

The browser is Debian's package (``make test`` installs it when missing). With
``CI=true`` (or ``REMS_REQUIRE_SERVICES=1``) a missing browser fails the tests
instead of skipping them.

Fixtures: ``portal`` (the live server, its app and the seeded ``world``),
``browser`` (one Chromium), ``page`` (a new context and page per test),
``sign_in(page, role)``, and ``assert_accessible(page)`` (axe-core: no serious or
critical violation).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from rems_service import create_app
from rems_service.db import migrate
from rems_service.db.engine import build_engine
from rems_service.services import users
from tests.conftest import assert_decisions_replay
from tests.helpers import NOW, TRAINED, VALID_NPIS, Api, make_pharmacy, make_prescriber
from workflows.actors import SYSTEM

REQUIRE_BROWSER = os.environ.get("CI", "").lower() == "true" or os.environ.get("REMS_REQUIRE_SERVICES") == "1"
#: Debian's Chromium (``apt-get install chromium``); REMS_CHROMIUM names another binary.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
PASSWORD = "correct horse battery staple"
ROLES = ("admin", "auditor", "prescriber", "other_prescriber", "pharmacist", "other_pharmacist")


def chromium_path() -> str | None:
    configured = os.environ.get("REMS_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    return found


@dataclass
class World:
    """What the API helpers of ``tests.helpers`` need (an ``Api`` and tokens), plus the portal users."""

    api: Api
    runtime: Any
    prescriber: Any
    other_prescriber: Any
    pharmacy: Any
    other_pharmacy: Any
    tokens: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def prescriber_token(self) -> str:
        return self.tokens["prescriber"]

    @property
    def pharmacist_token(self) -> str:
        return self.tokens["pharmacist"]

    @property
    def admin(self) -> str:
        return self.tokens["admin"]

    @property
    def auditor(self) -> str:
        return self.tokens["auditor"]


@dataclass
class Portal:
    url: str
    app: Any
    world: World

    def at(self, path: str) -> str:
        return self.url + path


def _seed(runtime: Any, client: Any) -> World:
    prescriber = make_prescriber(runtime, VALID_NPIS[0])
    other_prescriber = make_prescriber(runtime, VALID_NPIS[1])
    pharmacy = make_pharmacy(runtime, "1234567")
    other_pharmacy = make_pharmacy(runtime, "7654321")
    world = World(
        api=Api(client),
        runtime=runtime,
        prescriber=prescriber,
        other_prescriber=other_prescriber,
        pharmacy=pharmacy,
        other_pharmacy=other_pharmacy,
    )
    bindings: dict[str, dict[str, Any]] = {
        "admin": {"role": "admin"},
        "auditor": {"role": "auditor"},
        "prescriber": {"role": "prescriber", "prescriber_id": prescriber.id},
        "other_prescriber": {"role": "prescriber", "prescriber_id": other_prescriber.id},
        "pharmacist": {"role": "pharmacist", "pharmacy_id": pharmacy.id, "training_completed_at": TRAINED},
        "other_pharmacist": {"role": "pharmacist", "pharmacy_id": other_pharmacy.id, "training_completed_at": TRAINED},
    }
    for label, kwargs in bindings.items():
        name = f"{label.replace('_', ' ').title()} Tester"
        email = f"{label.replace('_', '-')}@portal.example.org"
        _user, token = users.create_user(
            runtime.uow(), SYSTEM, TRAINED, name=name, email=email, password=PASSWORD, **kwargs
        )
        world.tokens[label], world.emails[label], world.names[label] = token, email, name
    return world


class QuietHandler(WSGIRequestHandler):
    """The app logs each request itself (``rems.access``); werkzeug's second line is noise."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The app served on a free local port by a thread, on a migrated SQLite file, seeded."""
    path = tmp_path_factory.mktemp("portal") / "portal.sqlite3"
    engine = build_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    app = create_app({"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "browser-tests"})
    world = _seed(app.extensions["rems"], app.test_client())
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="portal-server", daemon=True)
    thread.start()
    try:
        yield Portal(url=f"http://127.0.0.1:{server.server_port}", app=app, world=world)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        try:
            # As after every database test: each decision the portal recorded replays.
            assert_decisions_replay(app.extensions["rems"])
        finally:
            app.extensions["rems"].engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        message = "Chromium is not installed (Debian: apt-get install chromium; `make test` does it)"
        if REQUIRE_BROWSER:
            pytest.fail(message + " and the browser is required here (CI=true)", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            # Root in CI: Chromium's sandbox needs user namespaces it may not have there.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any, portal: Portal) -> Iterator[Any]:
    ctx = browser.new_context(base_url=portal.url, extra_http_headers={"X-Rems-Now": NOW.isoformat()})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


@pytest.fixture
def sign_in(portal: Portal) -> Callable[..., Any]:
    """``sign_in(page, "pharmacist")``: sign in through the form; the page is on the role's home after."""

    def do(page: Any, role: str) -> Any:
        page.goto("/login")
        page.get_by_label("Email").fill(portal.world.emails[role])
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        return page

    return do


@pytest.fixture(scope="session")
def axe() -> Any:
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


@pytest.fixture
def assert_accessible(axe: Any) -> Callable[[Any], None]:
    """axe-core on the page as it is now: no serious or critical violation (UI.md)."""

    def check(page: Any) -> None:
        results = axe.run(page)
        bad = [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in results.response["violations"]
            if v.get("impact") in ("serious", "critical")
        ]
        assert not bad, f"axe-core on {page.url}: {bad}"

    return check
