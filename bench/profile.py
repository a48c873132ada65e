"""Where a dispense request's time goes, in-process, on the database a bench run left
(``rems_bench``): the SQL statements one approved and one denied request issue, the
mean time per request through the Flask test client, and optionally a pyinstrument
profile (``pip install pyinstrument``; not a dependency of the project).

    python -m bench.profile [--requests 600] [--pyinstrument profile.txt] [--cprofile cpu.txt]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("REMS_LOG_LEVEL", "WARNING")

from bench.run import seed_authorizations  # noqa: E402
from rems_service import create_app  # noqa: E402
from rems_service.services import users  # noqa: E402
from workflows.actors import SYSTEM  # noqa: E402
from workflows.identifiers import new_reference_number  # noqa: E402

COUNSELING = {"medication_guide_provided": True, "checklist_completed": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("REMS_BENCH_PROFILE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/rems_bench"),
    )
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument(
        "--pyinstrument", metavar="FILE", help="write a pyinstrument text profile of the timed requests"
    )
    parser.add_argument(
        "--cprofile",
        metavar="FILE",
        help="write cProfile's functions by own CPU time (tottime) for the timed requests: where Python spends",
    )
    args = parser.parse_args()
    app = create_app({"DATABASE_URL": args.database_url, "RELAY_AFTER_REQUEST": False})
    runtime = app.extensions["rems"]
    engine = runtime.engine
    now = datetime.now(UTC)
    with engine.connect() as conn:
        patients = [
            dict(r._mapping)
            for r in conn.execute(
                text("SELECT id, rems_patient_id, prescriber_id, risk_category FROM patients LIMIT 5000")
            )
        ]
        pharmacy_id = conn.execute(text("SELECT id FROM pharmacies WHERE status = 'certified' LIMIT 1")).scalar_one()
    _, token = users.create_user(
        runtime.uow(),
        SYSTEM,
        now,
        name="profile",
        role="pharmacist",
        pharmacy_id=pharmacy_id,
        training_completed_at=now - timedelta(days=30),
    )
    n = args.requests + 20
    auths = seed_authorizations(engine, patients, n // 2 + 1, lambda i: now + timedelta(days=29))
    client = app.test_client()

    def post(i: int) -> None:
        if i % 2 == 0:
            a = auths[i // 2]
            body = {"authorization_number": a["number"], "rems_patient_id": a["rems_patient_id"]}
        else:
            body = {"authorization_number": new_reference_number("RA"), "rems_patient_id": "RP-00000-00000"}
        response = client.post(
            "/api/v1/dispenses",
            json={**body, "days_supply": 28, "quantity": 28, "counseling": COUNSELING},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.data

    for i in range(16):  # warm-up: prepared statements, caches
        post(i)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append(" ".join(statement.split())[:100])

    event.listen(engine, "before_cursor_execute", count)
    for label, i in (("approved", 16), ("denied", 17)):
        statements.clear()
        post(i)
        print(
            f"{label}: {len(statements)} statements (authentication's first; no pre-ping: one connection per request)"
        )
        for s in statements:
            print("   ", s)
    event.remove(engine, "before_cursor_execute", count)
    profiler = None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    cprofiler = None
    if args.cprofile:
        import cProfile

        cprofiler = cProfile.Profile(time.process_time)
        cprofiler.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(18, n):
        post(i)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if cprofiler is not None:
        import io
        import pstats

        cprofiler.disable()
        out = io.StringIO()
        pstats.Stats(cprofiler, stream=out).sort_stats("tottime").print_stats(60)
        pstats.Stats(cprofiler, stream=out).sort_stats("cumulative").print_stats(80)
        Path(args.cprofile).write_text(out.getvalue())
    if profiler is not None:
        profiler.stop()
        Path(args.pyinstrument).write_text(profiler.output_text(unicode=False, color=False))
    print(
        f"{n - 18} requests (half approved, half denied) in {elapsed:.2f} s: "
        f"{elapsed / (n - 18) * 1000:.2f} ms each, in-process, "
        f"of which {cpu / (n - 18) * 1000:.2f} ms CPU time of this process (the rest: waiting for the database)"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
