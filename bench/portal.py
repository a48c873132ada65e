"""Server time of the pharmacist's dispense check page (issue 13: under 100 ms at p95),
with the demo data (``rems demo seed``), on the embedded SQLite of ``make run`` and on
the machine's PostgreSQL (``python -m bench.portal``; figures only, nothing asserted).

For each backend: a fresh database, the demo program seeded by the CLI, then as the
demo prescriber (through the API) ``--authorizations`` adult male patients enrolled,
surveyed and authorized, ``--queue`` of them dispensed so the hand-over queue and the
recent lists are full as at a busy counter. The demo pharmacist signs in through the
portal's form; then, timed inside the WSGI app (the request from the moment the
server hands it over until the last byte of the page is produced, as gunicorn would
serve it):

- ``GET /pharmacy``: the page (form, hand-over queue with time left, recent lists);
- ``POST /pharmacy/check`` with an unknown authorization number: a denial rendered;
- ``POST /pharmacy/check`` with a valid authorization: an approval rendered (each once).

Figures are printed and written to ``bench/results/portal.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import quantiles
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from rems_service import cli, create_app  # noqa: E402
from rems_service.db import migrate  # noqa: E402
from rems_service.db.engine import build_engine  # noqa: E402
from workflows.patients import RiskCategory  # noqa: E402
from workflows.surveys import required_questions  # noqa: E402

CSRF = re.compile(
    r'<input[^>]*\bname="csrf_token"[^>]*\bvalue="([^"]+)"|<input[^>]*\bvalue="([^"]+)"[^>]*\bname="csrf_token"'
)
PATIENT = {
    "first_name": "Bench",
    "last_name": "Patient",
    "date_of_birth": "1960-04-02",
    "risk_category": "MALE_ADULT",
    "ppaf_signed": True,
    "counseling_completed": True,
}


def log(message: str) -> None:
    print(f"[bench.portal {time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], q: int) -> float:
    return quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


class ServerTimer:
    """WSGI middleware: the time from receiving a request to producing the last byte."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.times: list[float] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started = time.perf_counter()
        body = self.app(environ, start_response)
        try:
            chunks = list(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        self.times.append((time.perf_counter() - started) * 1000)
        return chunks


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'portal-bench.sqlite3'}"


def postgres_url(base_url: str) -> str:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS rems_bench_portal WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE rems_bench_portal"))
    admin.dispose()
    return make_url(base_url).set(database="rems_bench_portal").render_as_string(hide_password=False)


def api(client: Any, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), (path, response.status_code, response.get_data(as_text=True))
    return response.get_json()


def prepare(client: Any, demo: dict[str, Any], authorizations: int, queue: int) -> list[dict[str, str]]:
    """Patients authorized by the demo prescriber; the first ``queue`` dispensed (awaiting hand-over)."""
    prescriber = demo["users"]["prescriber"]["token"]
    pharmacist = demo["users"]["pharmacist"]["token"]
    answers = dict.fromkeys(required_questions(RiskCategory.MALE_ADULT), False)
    completed = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    ready = []
    for n in range(authorizations):
        patient = api(client, prescriber, "POST", "/api/v1/patients", {**PATIENT, "last_name": f"Patient {n}"})
        api(
            client,
            prescriber,
            "POST",
            f"/api/v1/patients/{patient['id']}/surveys",
            {"completed_at": completed, "answers": answers},
        )
        auth = api(
            client,
            prescriber,
            "POST",
            "/api/v1/authorizations",
            {
                "patient_id": patient["id"],
                "days_supply": 28,
                "quantity": 28,
                "strength_mg": 25,
                "prescriber_survey": {"counseled_on_risks": True, "contraception_confirmed": True},
            },
        )
        assert auth["decision"] == "approved", auth
        ready.append({"authorization_number": auth["authorization_number"], "rems_patient_id": auth["rems_patient_id"]})
    for item in ready[:queue]:
        body = {**item, "days_supply": 28, "quantity": 28}
        decided = api(
            client,
            pharmacist,
            "POST",
            "/api/v1/dispenses",
            {**body, "counseling": {"medication_guide_provided": True, "checklist_completed": True}},
        )
        assert decided["decision"] == "approved", decided
    return ready[queue:]


def csrf(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1) or found.group(2)


def sign_in(client: Any, email: str, password: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"csrf_token": csrf(page), "email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def check_form(client: Any, authorization_number: str, rems_patient_id: str) -> dict[str, str]:
    return {
        "csrf_token": csrf(client.get("/pharmacy").get_data(as_text=True)),
        "authorization_number": authorization_number,
        "rems_patient_id": rems_patient_id,
        "days_supply": "28",
        "quantity": "28",
        "medication_guide_provided": "y",
        "checklist_completed": "y",
    }


def measure(backend: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    if backend == "postgresql":
        engine = build_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    app = create_app({"DATABASE_URL": url, "RELAY_AFTER_REQUEST": False, "SECRET_KEY": "bench"})
    if backend == "sqlite":
        migrate.upgrade(app.extensions["rems"].engine)
    seeded = app.test_cli_runner().invoke(cli.main, ["demo", "seed"])
    assert seeded.exit_code == 0, seeded.output
    demo = json.loads(seeded.output)
    client = app.test_client()
    log(f"{backend}: demo seeded; {args.authorizations} authorizations, {args.queue} awaiting hand-over")
    valid = prepare(client, demo, args.authorizations, args.queue)
    pharmacist = demo["users"]["pharmacist"]
    sign_in(client, pharmacist["email"], pharmacist["password"])
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer  # type: ignore[method-assign]

    def timed(run: Callable[[], Any], n: int, warmup: int = 10) -> list[float]:
        for _ in range(warmup):
            run()
        timer.times.clear()
        for _ in range(n):
            run()
        return list(timer.times)

    def page() -> None:
        assert client.get("/pharmacy").status_code == 200

    def denial() -> None:
        form = check_form(client, "RA-00000-00000-00000", "RP-00000-00000")
        response = client.post("/pharmacy/check", data=form)
        assert response.status_code == 200 and "Denied" in response.get_data(as_text=True)

    results: dict[str, Any] = {"backend": backend}
    results["page_ms"] = timed(page, args.n)
    # Each check first GETs the page for its CSRF token: keep only the POSTs' times.
    times = timed(denial, args.n)
    results["denied_ms"] = times[1::2]
    approvals: list[float] = []
    for item in valid:
        form = check_form(client, item["authorization_number"], item["rems_patient_id"])
        timer.times.clear()
        response = client.post("/pharmacy/check", data=form)
        assert response.status_code == 200 and "Approved" in response.get_data(as_text=True)
        approvals.extend(timer.times)
    results["approved_ms"] = approvals
    app.extensions["rems"].engine.dispose()
    return results


def summary(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": r["backend"]}
    for key in ("page_ms", "denied_ms", "approved_ms"):
        values = r[key]
        out[key] = {
            "n": len(values),
            "p50": round(percentile(values, 50), 2),
            "p95": round(percentile(values, 95), 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="PostgreSQL server"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--n", type=int, default=300, help="timed requests per measure")
    parser.add_argument("--authorizations", type=int, default=120, help="patients authorized by the demo prescriber")
    parser.add_argument("--queue", type=int, default=20, help="of them awaiting hand-over")
    args = parser.parse_args()
    started = datetime.now(UTC)
    found = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends.split(","):
            url = sqlite_url(Path(folder)) if backend == "sqlite" else postgres_url(args.database_url)
            found.append(summary(measure(backend, url, args)))
    report = {"started": started.isoformat(timespec="seconds"), "args": vars(args), "results": found}
    out = ROOT / "bench" / "results" / "portal.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| backend | dispense check page p50 / p95 (ms) | denial rendered p50 / p95 | approval rendered p50 / p95 |")
    print("|---|---|---|---|")
    for r in found:
        cells = [f"{r[k]['p50']} / {r[k]['p95']}" for k in ("page_ms", "denied_ms", "approved_ms")]
        print(f"| {r['backend']} | " + " | ".join(cells) + " |")
    log(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
