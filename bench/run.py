"""Benchmarks of the decision path and the audit log, with a baseline measured in
the same run (``make bench``; ``make bench BENCH_ARGS=--quick`` in under 2 minutes).

On the machine's PostgreSQL (a database of its own, dropped and recreated):
seed a program, measure decision latency with a small and a large audit
history, load ``POST /api/v1/dispenses`` (valid and invalid authorizations)
and a minimal baseline app under identical gunicorn settings from a separate
load process, time an expiry sweep with the same number of due rows in a
small and a large table, verify the whole chain, page the audit log with
filters, and export it. Figures are printed and written to
``bench/results/latest.json``; nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import quantiles
from typing import Any

from sqlalchemy import Table, create_engine, insert, text
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("REMS_LOG_LEVEL", "WARNING")
# The bench's own audit key (production settings require one; the in-process app and the
# served one sign and verify with the same key).
os.environ.setdefault("REMS_AUDIT_KEY", "b3" * 32)
# The load sends thousands of decisions per token and minute: the limits stay on (their
# counters are part of a request's cost), set above what the load reaches.
os.environ.setdefault("REMS_RATE_LIMIT_DECISIONS", "1000000 per minute")
os.environ.setdefault("REMS_RATE_LIMIT_FAILED_AUTH", "1000000 per minute")

from bench.measure import cpu_sample, cpu_spent, interleave, ratio_summary, raw_read_and_hash  # noqa: E402
from rems_service import create_app  # noqa: E402
from rems_service.api.audit import csv_chunks  # noqa: E402
from rems_service.db import audit_chain as audit  # noqa: E402
from rems_service.db import audit_mac, migrate  # noqa: E402
from rems_service.db.engine import build_engine  # noqa: E402
from rems_service.db.models import (  # noqa: E402
    AuditEntry,
    AuditReasonCode,
    AuditSubjectRef,
    Authorization,
    DecisionRecord,
    Patient,
    PatientSurvey,
    PregnancyTestRecord,
    table_of,
)
from rems_service.runtime import Runtime  # noqa: E402
from rems_service.services import audit_log, dispenses, pharmacies, prescribers, sweeps, users  # noqa: E402
from workflows.actors import SYSTEM, Actor  # noqa: E402
from workflows.audit import chain_hash  # noqa: E402
from workflows.identifiers import new_reference_number  # noqa: E402
from workflows.participants import PHARMACY_ATTESTATIONS, PRESCRIBER_ATTESTATIONS  # noqa: E402
from workflows.patients import RiskCategory  # noqa: E402
from workflows.surveys import required_questions  # noqa: E402

BIN = Path(sys.executable).parent
NOW = datetime.now(UTC).replace(microsecond=0)
SCALES = {
    "full": dict(
        prescribers=200,
        pharmacies=500,
        patients=100_000,
        history_small=10_000,
        history_large=1_000_000,
        sweep_small=10_000,
        sweep_large=1_000_000,
        sweep_due=1_000,
        load_seconds=20,
        load_bodies=6_000,
        latency_n=300,
    ),
    "quick": dict(
        prescribers=20,
        pharmacies=50,
        patients=5_000,
        history_small=10_000,
        history_large=100_000,
        sweep_small=10_000,
        sweep_large=100_000,
        sweep_due=1_000,
        load_seconds=6,
        load_bodies=2_000,
        latency_n=150,
    ),
}
GUNICORN = [
    "--workers",
    os.environ.get("REMS_BENCH_WORKERS", "2"),
    "--threads",
    os.environ.get("REMS_BENCH_THREADS", "1"),
    "--timeout",
    "60",
    "--worker-class",
    os.environ.get("REMS_BENCH_WORKER_CLASS", "sync"),
]
CONCURRENCY = 8
#: Interleaved rounds (A B A B A B): each ratio is the median of per-round ratios.
LOAD_ROUNDS = 3
LATENCY_ROUNDS = 5
EXPORT_ROUNDS = 3
VERIFY_ROUNDS = 3
#: A Redis database of the bench's own, flushed at the start.
BENCH_REDIS_URL = os.environ.get("REMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], q: int) -> float:
    return quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


# --- database ------------------------------------------------------------------------


def fresh_database(base_url: str) -> str:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS rems_bench WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE rems_bench"))
    admin.dispose()
    url = make_url(base_url).set(database="rems_bench").render_as_string(hide_password=False)
    engine = build_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE bench_baseline (id uuid PRIMARY KEY, found boolean NOT NULL, payload text,"
                " created_at timestamptz DEFAULT now())"
            )
        )
    engine.dispose()
    return url


def copy_database(base_url: str, url: str, engine: Engine, name: str) -> str:
    """A copy of the bench database as it is now (``CREATE DATABASE ... TEMPLATE``), so a
    small and a large history can be measured side by side. The template must have no
    other connection while it is copied: ``engine``'s pool is emptied first."""
    engine.dispose()
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    source = make_url(url).database
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": source},
        )
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {source}"))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, name: str) -> None:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def bulk(engine: Engine, table: Table, rows: list[dict[str, Any]], batch: int = 5_000) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), batch):
            conn.execute(insert(table), rows[i : i + batch])


# --- seeding -------------------------------------------------------------------------


def seed_participants(runtime: Runtime, scale: dict[str, int]) -> dict[str, Any]:
    prescriber_ids, pharmacy_ids = [], []
    for i in range(scale["prescribers"]):
        npi = _npi(100_000_000 + i)
        prescriber = prescribers.register(runtime.uow(), SYSTEM, NOW, npi=npi, first_name="P", last_name=f"Rx{i}")
        prescribers.certify(runtime.uow(), SYSTEM, NOW, prescriber.id, dict.fromkeys(PRESCRIBER_ATTESTATIONS, True))
        prescriber_ids.append(prescriber.id)
    for i in range(scale["pharmacies"]):
        pharmacy = pharmacies.register(
            runtime.uow(),
            SYSTEM,
            NOW,
            ncpdp_id=f"{i + 1:07d}",
            name=f"Pharmacy {i}",
            representative_name="Rep",
            representative_email="rep@example.org",
        )
        pharmacies.certify(
            runtime.uow(), SYSTEM, NOW, runtime.program, pharmacy.id, dict.fromkeys(PHARMACY_ATTESTATIONS, True)
        )
        pharmacy_ids.append(pharmacy.id)
    tokens = []
    for pharmacy_id in pharmacy_ids[:CONCURRENCY]:
        user, token = users.create_user(
            runtime.uow(),
            SYSTEM,
            NOW,
            name="bench pharmacist",
            role="pharmacist",
            pharmacy_id=pharmacy_id,
            training_completed_at=NOW - timedelta(days=30),
        )
        tokens.append((user, token, pharmacy_id))
    return {"prescribers": prescriber_ids, "pharmacies": pharmacy_ids, "pharmacists": tokens}


def _npi(nine: int) -> str:
    digits = f"80840{nine:09d}"
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return f"{nine:09d}{(10 - total % 10) % 10}"


def seed_patients(engine: Engine, scale: dict[str, int], participants: dict[str, Any]) -> list[dict[str, Any]]:
    """Patients of every category with tests and surveys, in bulk (the rows the services would write)."""
    categories = ["FRP_ADULT", "FNRP_ADULT", "MALE_ADULT", "MALE_ADULT", "FRP_CHILD", "FNRP_CHILD", "MALE_CHILD"]
    patients, tests, surveys = [], [], []
    for i in range(scale["patients"]):
        category = categories[i % len(categories)]
        pid = uuid.uuid4()
        patients.append(
            dict(
                id=pid,
                rems_patient_id=f"RP-{i:06d}-{i % 9973:04d}",
                prescriber_id=participants["prescribers"][i % len(participants["prescribers"])],
                first_name="F",
                last_name=f"L{i}",
                date_of_birth=datetime(1960 if category.endswith("ADULT") else 2012, 1, 1).date(),
                risk_category=category,
                menstrual_cycle="regular" if category.startswith("FRP") else None,
                fnrp_reason="hysterectomy" if category.startswith("FNRP") else None,
                guardian_name=None if category.endswith("ADULT") else "G",
                status="on_therapy" if i % 3 else "enrolled",
                status_changed_at=NOW - timedelta(days=60),
                status_reason=None,
                therapy_started_at=NOW - timedelta(days=60) if i % 3 else None,
                next_test_due_at=None,
                next_survey_due_at=None,
                enrolled_at=NOW - timedelta(days=90),
                created_at=NOW - timedelta(days=90),
            )
        )
        if category.startswith("FRP"):
            for days in (20, 13, 3):
                tests.append(
                    dict(
                        id=uuid.uuid4(),
                        patient_id=pid,
                        collected_at=NOW - timedelta(days=days),
                        result="negative",
                        sensitivity_miu_ml=25,
                        recorded_at=NOW - timedelta(days=days),
                        recorded_by=None,
                    )
                )
        surveys.append(
            dict(
                id=uuid.uuid4(),
                patient_id=pid,
                completed_at=NOW - timedelta(days=2),
                answers=dict.fromkeys(required_questions(RiskCategory(category)), False),  # complete (R-SURV-3)
                noncompliance=[],
                recorded_at=NOW - timedelta(days=2),
                recorded_by=None,
            )
        )
    bulk(engine, table_of(Patient), patients)
    bulk(engine, table_of(PregnancyTestRecord), tests)
    bulk(engine, table_of(PatientSurvey), surveys)
    return patients


def seed_authorizations(
    engine: Engine,
    patients: list[dict[str, Any]],
    n: int,
    expires_at: Callable[[int], datetime],
    status: str = "issued",
) -> list[dict[str, Any]]:
    """Issued authorizations (with their decision rows) for male and FNRP adults (no testing).

    The decision rows are stand-ins with negative ``audit_seq`` values, which no
    real audit entry has, so they never pose as recorded decisions (replay skips them)."""
    candidates = [p for p in patients if p["risk_category"] in ("MALE_ADULT", "FNRP_ADULT")]
    decisions, auths = [], []
    for i in range(n):
        p = candidates[i % len(candidates)]
        did = uuid.uuid4()
        decisions.append(
            dict(
                id=did,
                kind="authorization",
                outcome="approved",
                reasons=[],
                evaluated_at=NOW,
                valid_until=NOW + timedelta(days=30),
                program_version="2020.1",
                snapshot={},
                actor_user_id=None,
                prescriber_id=p["prescriber_id"],
                pharmacy_id=None,
                patient_id=p["id"],
                rems_patient_id=p["rems_patient_id"],
                audit_seq=-(random.getrandbits(62) + 1),
                created_at=NOW,
            )
        )
        auths.append(
            dict(
                id=uuid.uuid4(),
                number=new_reference_number("RA"),
                patient_id=p["id"],
                prescriber_id=p["prescriber_id"],
                rems_patient_id=p["rems_patient_id"],
                risk_category=p["risk_category"],
                days_supply=28,
                quantity=28,
                strength_mg=10.0,
                status=status,
                issued_at=NOW - timedelta(days=1),
                expires_at=expires_at(i),
                status_changed_at=NOW - timedelta(days=1),
                status_reason=None,
                decision_id=did,
            )
        )
    bulk(engine, table_of(DecisionRecord), decisions)
    bulk(engine, table_of(Authorization), auths)
    return auths


def grow_history(engine: Engine, n: int, pharmacy_ids: list[uuid.UUID], patients: list[dict[str, Any]]) -> None:
    """Append ``n`` chained decision entries (hashes and MACs computed exactly as the append path does)."""
    with engine.connect() as conn:
        head_seq, head_hash = conn.execute(text("SELECT seq, hash FROM audit_chain_head WHERE id = 1")).one()
    entries, reason_codes, subject_refs = table_of(AuditEntry), table_of(AuditReasonCode), table_of(AuditSubjectRef)
    rows: list[dict[str, Any]] = []
    codes: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    prev = head_hash
    key = audit_mac.current_key()
    reasons_pool = [
        [],
        [],
        [{"code": "AUTHORIZATION_ALREADY_USED", "rule": "R-DISP-5", "message": "m"}],
        [
            {"code": "EARLY_REFILL", "rule": "R-DISP-3", "message": "m"},
            {"code": "COUNSELING_INCOMPLETE", "rule": "R-COUNSEL-1", "message": "m"},
        ],
    ]
    started = NOW - timedelta(days=365)
    for k in range(1, n + 1):
        seq = head_seq + k
        p = patients[k % len(patients)]
        reasons = reasons_pool[k % len(reasons_pool)]
        pharmacy = pharmacy_ids[k % len(pharmacy_ids)]
        entry = AuditEntry(
            seq=seq,
            recorded_at=started + timedelta(microseconds=seq * 1000),
            effective_at=started + timedelta(microseconds=seq * 1000),
            actor_user_id=None,
            actor_role="pharmacist",
            action="dispense.decided",
            outcome="denied" if reasons else "approved",
            reasons=reasons,
            program_version="2020.1",
            subject={
                "pharmacy_id": str(pharmacy),
                "rems_patient_id": p["rems_patient_id"],
                "prescriber_id": str(p["prescriber_id"]),
            },
            prescriber_id=p["prescriber_id"],
            pharmacy_id=pharmacy,
            rems_patient_id=p["rems_patient_id"],
            inputs_digest="0" * 64,
            details={"decision_id": str(uuid.uuid4()), "kind": "dispense"},
            prev_hash=prev,
            hash="",
        )
        entry.hash = prev = chain_hash(prev, audit.entry_content(entry))
        entry.mac = key.entry_mac(entry.hash)  # signed as the append path signs
        rows.append({c.name: getattr(entry, c.name) for c in entries.columns})
        codes.extend({"code": r["code"], "seq": seq} for r in reasons)
        refs.extend({"kind": k, "value": v, "seq": seq} for k, v in audit.subject_refs(entry.subject, entry.details))
        if len(rows) >= 20_000:
            bulk(engine, entries, rows)
            rows = []
    bulk(engine, entries, rows)
    bulk(engine, reason_codes, codes)
    bulk(engine, subject_refs, refs)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_chain_head SET seq = :s, hash = :h WHERE id = 1"), {"s": head_seq + n, "h": prev}
        )
    vacuum(engine, "audit_entries", "audit_reason_codes", "audit_subject_refs")


def vacuum(engine: Engine, *tables: str) -> None:
    """VACUUM (ANALYZE) after a bulk load, as autovacuum would have done long before a
    history built up over months is queried: without it the first reads of each fresh
    page set its hint bits (writes) and the first queries measure that instead."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables or ("",):  # none named: the whole database
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))


# --- measurements --------------------------------------------------------------------


def decision_latency(runtime: Runtime, actor: Actor, auths: list[dict[str, Any]], n: int) -> dict[str, list[float]]:
    """In-process dispense decisions, alternately on a valid authorization and on an unknown
    number: milliseconds each, by kind."""
    times: dict[str, list[float]] = {"valid": [], "unknown": []}
    for i in range(n):
        if i % 2 == 0 and auths:
            a = auths.pop()
            kind, number, rid = "valid", a["number"], a["rems_patient_id"]
        else:
            kind, number, rid = "unknown", new_reference_number("RA"), "RP-00000-00000"
        started = time.perf_counter()
        dispenses.request(
            runtime.uow,
            actor,
            datetime.now(UTC),
            runtime.program,
            dispenses.command(
                authorization_number=number,
                rems_patient_id=rid,
                days_supply=28,
                quantity=28,
                counseling={"medication_guide_provided": True, "checklist_completed": True},
            ),
        )
        times[kind].append((time.perf_counter() - started) * 1000)
    return times


def mixed_p50(times: dict[str, list[float]]) -> float:
    """The mean of the two kinds' medians. The median of the mixed sample would sit in the
    gap between two latency populations and jump from one to the other between runs."""
    return (percentile(times["valid"], 50) + percentile(times["unknown"], 50)) / 2


def merged(rounds: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for times in rounds:
        for kind, values in times.items():
            out.setdefault(kind, []).extend(values)
    return out


def with_export(port: int, token: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``measure()`` while a client streams the full audit CSV export from the same
    service (restarted if it ends first); the figures gain ``export_rows`` read meanwhile."""
    import http.client

    stop_export = threading.Event()
    rows = [0]

    def stream() -> None:
        while not stop_export.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", "/api/v1/audit/export?format=csv", headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            while not stop_export.is_set():
                chunk = response.read(65_536)
                if not chunk:
                    break
                rows[0] += chunk.count(b"\n")
            conn.close()

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    time.sleep(1.0)  # the export is streaming before the decisions start
    try:
        figures = measure()
    finally:
        stop_export.set()
        thread.join(timeout=30)
    figures["export_rows"] = rows[0]
    return figures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def with_application_name(url: str, name: str) -> str:
    """``url`` whose connections show as ``name`` in ``pg_stat_activity`` (to find their backends)."""
    return make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


def serve(app: str, url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    # As in production: a queue is configured, so requests leave their events in the
    # outbox for rq cron's relay (not running here) and do no relaying themselves.
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": BENCH_REDIS_URL,
        "REMS_ENV": "production",
        "REMS_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [BIN / "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}", app],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Warm up: gunicorn binds before its workers have imported the app; wait until
    # both workers answer, so start-up is not measured as request latency.
    deadline, answered = time.monotonic() + 60, 0
    while time.monotonic() < deadline and answered < 20:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                answered += response.status == 200
        except OSError:
            time.sleep(0.2)
    if answered < 20:
        raise RuntimeError(f"{app} did not start")
    return proc, port


def load(port: int, path: str, pairs: list[list[Any]], seconds: float, cycle: bool = False) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(pairs, f)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--url",
            f"http://127.0.0.1:{port}{path}",
            "--bodies",
            f.name,
            "--concurrency",
            str(CONCURRENCY),
            "--duration",
            str(seconds),
            *(["--cycle"] if cycle else []),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(f.name)
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def time_sweep(runtime: Runtime) -> float:
    """Seconds until the sweep has handled every due row: it takes up to ``sweeps.BATCH``
    per kind and run (as cron calls it), so it runs until a run finds nothing due."""
    started, runs = time.perf_counter(), 0
    handled: dict[str, int] = {}
    while True:
        report = sweeps.run(runtime.uow, runtime.program, datetime.now(UTC))
        runs += 1
        for kind, count in report.counts.items():
            handled[kind] = handled.get(kind, 0) + count
        if not report.counts.get("authorizations_expired"):
            break
    elapsed = time.perf_counter() - started
    log(f"  sweep: {runs} runs handled {handled} in {elapsed:.2f}s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller scale, under 2 minutes")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("REMS_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    scale = SCALES[mode]
    random.seed(7)
    t_start = time.monotonic()
    url = fresh_database(args.database_url)
    import redis

    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
    app = create_app({"DATABASE_URL": url, "RELAY_AFTER_REQUEST": False})
    runtime: Runtime = app.extensions["rems"]
    engine = runtime.engine
    results: dict[str, Any] = {"mode": mode, "scale": scale}

    log(
        f"seeding ({mode}): {scale['prescribers']} prescribers, {scale['pharmacies']} pharmacies,"
        f" {scale['patients']} patients"
    )
    participants = seed_participants(runtime, scale)
    patients = seed_patients(engine, scale, participants)
    far = lambda i: NOW + timedelta(days=29)  # noqa: E731
    latency_auths = seed_authorizations(engine, patients, scale["latency_n"], far)
    pharmacist, _token, pharmacy_id = participants["pharmacists"][0]
    actor = Actor(
        pharmacist.id, "pharmacist", pharmacy_id=pharmacy_id, training_completed_at=pharmacist.training_completed_at
    )

    log(f"history {scale['history_small']:,} entries; a copy of the database at that size")
    grow_history(engine, scale["history_small"], participants["pharmacies"], patients)
    vacuum(engine)
    small_url = copy_database(args.database_url, url, engine, "rems_bench_small")
    log(f"history {scale['history_large']:,} entries")
    grow_history(engine, scale["history_large"] - scale["history_small"], participants["pharmacies"], patients)
    vacuum(engine)
    small_app = create_app({"DATABASE_URL": small_url, "RELAY_AFTER_REQUEST": False})
    small_runtime: Runtime = small_app.extensions["rems"]

    log("decision latency: small and large history interleaved")
    decision_latency(small_runtime, actor, [], 20)  # warm-up, untimed: caches, prepared plans
    decision_latency(runtime, actor, [], 20)
    half = len(latency_auths) // 2
    small_auths, large_auths = latency_auths[:half], latency_auths[half:]
    per_round = max(2, scale["latency_n"] // LATENCY_ROUNDS // 2 * 2)
    small_rounds, large_rounds = interleave(
        LATENCY_ROUNDS,
        lambda _: decision_latency(small_runtime, actor, small_auths, per_round),
        lambda _: decision_latency(runtime, actor, large_auths, per_round),
    )
    small_runtime.engine.dispose()
    drop_database(args.database_url, "rems_bench_small")
    small, large = merged(small_rounds), merged(large_rounds)
    history = ratio_summary([mixed_p50(b) / mixed_p50(a) for a, b in zip(small_rounds, large_rounds, strict=True)])
    results.update(
        decision_p50_ms_small_history=round(mixed_p50(small), 2),
        decision_p50_ms_large_history=round(mixed_p50(large), 2),
        history_latency_ratio=history["median"],
        history_latency_ratio_spread=history,
        decision_p50_ms_by_kind={
            size: {kind: round(percentile(t, 50), 2) for kind, t in times.items()}
            for size, times in (("small_history", small), ("large_history", large))
        },
    )

    log(f"load: baseline and service side by side, {LOAD_ROUNDS} interleaved rounds each")
    load_auths = seed_authorizations(engine, patients, scale["load_bodies"] * LOAD_ROUNDS // 2, far)
    tokens = participants["pharmacists"]
    counseling = {"medication_guide_provided": True, "checklist_completed": True}

    def bodies(auths: list[dict[str, Any]]) -> list[list[Any]]:
        pairs: list[list[Any]] = []
        for i in range(2 * len(auths)):
            _, token, _ = tokens[i % len(tokens)]
            if i % 2 == 0:
                a = auths[i // 2]
                body = {
                    "authorization_number": a["number"],
                    "rems_patient_id": a["rems_patient_id"],
                    "days_supply": 28,
                    "quantity": 28,
                    "counseling": counseling,
                }
            else:
                body = {
                    "authorization_number": new_reference_number("RA"),
                    "rems_patient_id": "RP-00000-00000",
                    "days_supply": 28,
                    "quantity": 28,
                    "counseling": counseling,
                }
            pairs.append([token, body])
        return pairs

    # Each service round gets authorizations of its own (a used one is denied EARLY_REFILL
    # from then on); the baseline only reads, so every round can reuse the first set.
    share = scale["load_bodies"] // 2
    service_bodies = [bodies(load_auths[r * share : (r + 1) * share]) for r in range(LOAD_ROUNDS)]
    baseline_bodies = service_bodies[0]
    vacuum(engine)
    baseline_proc, baseline_port = serve("bench.baseline_app:app", with_application_name(url, "bench_baseline"))
    service_proc, service_port = serve("rems_service.wsgi:app", with_application_name(url, "bench_service"))
    try:

        def measured(
            proc: subprocess.Popen[bytes], port: int, path: str, name: str, pairs: list[list[Any]], cycle: bool = False
        ) -> Any:
            before = cpu_sample(proc.pid, engine, name)
            figures = load(port, path, pairs, scale["load_seconds"], cycle)
            web, database = cpu_spent(before, cpu_sample(proc.pid, engine, name))
            figures["cpu_ms_per_request"] = round((web + database) * 1000 / max(1, figures["requests"]), 3)
            figures["web_cpu_ms_per_request"] = round(web * 1000 / max(1, figures["requests"]), 3)
            figures["db_cpu_ms_per_request"] = round(database * 1000 / max(1, figures["requests"]), 3)
            log(f"  {name}: {figures}")
            return figures

        baseline_rounds, service_rounds = interleave(
            LOAD_ROUNDS,
            lambda r: measured(
                baseline_proc, baseline_port, "/baseline", "bench_baseline", baseline_bodies, cycle=True
            ),
            lambda r: measured(service_proc, service_port, "/api/v1/dispenses", "bench_service", service_bodies[r]),
        )

        log(f"isolation: decision p99 with and without a full CSV export streaming, {EXPORT_ROUNDS} rounds each")
        _auditor, auditor_token = users.create_user(runtime.uow(), SYSTEM, NOW, name="bench auditor", role="auditor")
        isolation_auths = seed_authorizations(engine, patients, share * 2 * EXPORT_ROUNDS, far)
        isolation_bodies = [bodies(isolation_auths[r * share : (r + 1) * share]) for r in range(2 * EXPORT_ROUNDS)]
        vacuum(engine, "authorizations")
        quiet_rounds, export_rounds = interleave(
            EXPORT_ROUNDS,
            lambda r: load(service_port, "/api/v1/dispenses", isolation_bodies[2 * r], scale["load_seconds"]),
            lambda r: with_export(
                service_port,
                auditor_token,
                lambda: load(service_port, "/api/v1/dispenses", isolation_bodies[2 * r + 1], scale["load_seconds"]),
            ),
        )
    finally:
        stop(service_proc)
        stop(baseline_proc)

    def med(rounds: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key] for r in rounds), 3)

    throughput = ratio_summary([s["rps"] / b["rps"] for b, s in zip(baseline_rounds, service_rounds, strict=True)])
    p99 = ratio_summary([s["p99_ms"] / b["p99_ms"] for b, s in zip(baseline_rounds, service_rounds, strict=True)])
    cpu = ratio_summary(
        [
            s["cpu_ms_per_request"] / b["cpu_ms_per_request"]
            for b, s in zip(baseline_rounds, service_rounds, strict=True)
        ]
    )
    isolation = ratio_summary([e["p99_ms"] / q["p99_ms"] for q, e in zip(quiet_rounds, export_rounds, strict=True)])
    statuses: dict[str, int] = {}
    for r in service_rounds:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    results.update(
        dispense_rps=med(service_rounds, "rps"),
        dispense_p50_ms=med(service_rounds, "p50_ms"),
        dispense_p99_ms=med(service_rounds, "p99_ms"),
        dispense_statuses=statuses,
        baseline_rps=med(baseline_rounds, "rps"),
        baseline_p50_ms=med(baseline_rounds, "p50_ms"),
        baseline_p99_ms=med(baseline_rounds, "p99_ms"),
        throughput_ratio=throughput["median"],
        throughput_ratio_spread=throughput,
        p99_ratio=p99["median"],
        p99_ratio_spread=p99,
        dispense_cpu_ms_per_request=med(service_rounds, "cpu_ms_per_request"),
        dispense_web_cpu_ms_per_request=med(service_rounds, "web_cpu_ms_per_request"),
        dispense_db_cpu_ms_per_request=med(service_rounds, "db_cpu_ms_per_request"),
        baseline_cpu_ms_per_request=med(baseline_rounds, "cpu_ms_per_request"),
        baseline_web_cpu_ms_per_request=med(baseline_rounds, "web_cpu_ms_per_request"),
        baseline_db_cpu_ms_per_request=med(baseline_rounds, "db_cpu_ms_per_request"),
        cpu_ratio=cpu["median"],
        cpu_ratio_spread=cpu,
        export_quiet_p99_ms=med(quiet_rounds, "p99_ms"),
        export_concurrent_p99_ms=med(export_rounds, "p99_ms"),
        export_concurrent_rows=[r.get("export_rows") for r in export_rounds],
        export_p99_ratio=isolation["median"],
        export_p99_ratio_spread=isolation,
    )

    log(f"audit: full verification against a raw read-and-hash of the same rows, {VERIFY_ROUNDS} rounds each")

    def verify_round(_: int) -> dict[str, Any]:
        started = time.perf_counter()
        verification = audit_log.verify(runtime.uow(), None, datetime.now(UTC))
        return {
            "valid": verification.check.valid,
            "rows": verification.check.checked,
            "seconds": time.perf_counter() - started,
        }

    def raw_round(_: int) -> dict[str, Any]:
        rows, seconds = raw_read_and_hash(engine)
        return {"rows": rows, "seconds": seconds}

    raw_rounds, verify_rounds = interleave(VERIFY_ROUNDS, raw_round, verify_round)
    fraction = ratio_summary(
        [
            (v["rows"] / v["seconds"]) / (r["rows"] / r["seconds"])
            for r, v in zip(raw_rounds, verify_rounds, strict=True)
        ]
    )
    results.update(
        verify_valid=all(v["valid"] for v in verify_rounds),
        verify_entries=verify_rounds[-1]["rows"],
        verify_entries_per_s=round(statistics.median(v["rows"] / v["seconds"] for v in verify_rounds)),
        raw_read_hash_entries_per_s=round(statistics.median(r["rows"] / r["seconds"] for r in raw_rounds)),
        verify_fraction=fraction["median"],
        verify_fraction_spread=fraction,
    )

    log("audit: filtered pages")
    auditor = Actor(None, "auditor")
    page_times: list[float] = []
    kinds: dict[str, list[float]] = {}
    for i in range(60):
        filters = [
            audit_log.AuditFilter(pharmacy_id=random.choice(participants["pharmacies"])),
            audit_log.AuditFilter(reason="EARLY_REFILL"),
            audit_log.AuditFilter(action="dispense.decided", outcome="denied"),
            audit_log.AuditFilter(rems_patient_id=random.choice(patients)["rems_patient_id"]),
            audit_log.AuditFilter(
                prescriber_id=random.choice(participants["prescribers"]), since=NOW - timedelta(days=200)
            ),
        ][i % 5]
        started = time.perf_counter()
        audit_log.page(runtime.uow(), auditor, datetime.now(UTC), filters, 50, None)
        page_times.append((time.perf_counter() - started) * 1000)
        kinds.setdefault(",".join(filters.as_dict()), []).append(page_times[-1])
    results.update(
        audit_page_p95_ms=round(percentile(page_times, 95), 2),
        audit_page_p50_ms=round(percentile(page_times, 50), 2),
        audit_page_max_ms_by_filter={k: round(max(v), 2) for k, v in kinds.items()},
    )

    log("audit: CSV export (rows/s over the whole log; peak memory of a small and a 10x larger export)")
    start = NOW - timedelta(days=365)
    slices = (
        ("small", audit_log.AuditFilter(until=start + timedelta(seconds=10))),  # 1 entry per ms: ~10,000 rows
        ("large", audit_log.AuditFilter(until=start + timedelta(seconds=100))),
    )  # ~100,000 rows
    for label, f in slices:
        through = audit_log.record_export(runtime.uow(), auditor, datetime.now(UTC), f, "csv")
        tracemalloc.start()  # slows Python down several times: used for memory only
        rows = sum(chunk.count("\n") for chunk in csv_chunks(audit_log.stream(runtime.uow, f, through))) - 1
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results[f"export_rows_{label}"] = rows
        results[f"export_peak_mb_{label}"] = round(peak / 2**20, 2)
    f = audit_log.AuditFilter()
    through = audit_log.record_export(runtime.uow(), auditor, datetime.now(UTC), f, "csv")
    started = time.perf_counter()
    rows = sum(chunk.count("\n") for chunk in csv_chunks(audit_log.stream(runtime.uow, f, through))) - 1
    elapsed = time.perf_counter() - started
    results.update(
        export_rows_all=rows, export_rows_per_s=round(rows / elapsed), export_peak_mb=results["export_peak_mb_large"]
    )

    log("sweep: the same due rows among a small and a large table")
    past = lambda i: NOW - timedelta(minutes=1) if i < scale["sweep_due"] else NOW + timedelta(days=20)  # noqa: E731
    time_sweep(runtime)  # warm-up, untimed (nothing is due yet)
    seed_authorizations(engine, patients, scale["sweep_small"], past)
    vacuum(engine, "authorizations", "decisions")
    small_sweep = time_sweep(runtime)
    seed_authorizations(engine, patients, scale["sweep_large"] - scale["sweep_small"], past)
    vacuum(engine, "authorizations", "decisions")
    large_sweep = time_sweep(runtime)
    results.update(
        sweep_seconds_small=round(small_sweep, 3),
        sweep_seconds_large=round(large_sweep, 3),
        sweep_ratio=round(large_sweep / small_sweep, 3),
    )

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    results.update(
        commit=commit,
        cores=os.cpu_count(),
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - t_start, 1),
    )
    results["markdown"] = markdown(results)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / ("latest.json" if mode == "full" else "quick.json")).write_text(
        json.dumps(results, indent=2, default=str) + "\n"
    )
    print(results["markdown"])
    runtime.engine.dispose()


def spread(r: dict[str, Any], key: str) -> str:
    """``median [min–max]`` of an interleaved ratio."""
    summary = r.get(f"{key}_spread")
    if not summary:
        return str(r[key])
    return f"{summary['median']} [{summary['min']}–{summary['max']}]"


def markdown(r: dict[str, Any]) -> str:
    s = r["scale"]
    rows = [
        (
            "dispense throughput (rps)",
            r["dispense_rps"],
            f"baseline {r['baseline_rps']}",
            f"{spread(r, 'throughput_ratio')} (target ≥ 0.5)",
        ),
        (
            "dispense p50 / p99 (ms)",
            f"{r['dispense_p50_ms']} / {r['dispense_p99_ms']}",
            f"baseline {r['baseline_p50_ms']} / {r['baseline_p99_ms']}",
            f"p99 {spread(r, 'p99_ratio')} (target ≤ 3)",
        ),
        (
            "CPU per request, web worker + PostgreSQL backend (ms)",
            f"{r['dispense_cpu_ms_per_request']} ({r['dispense_web_cpu_ms_per_request']}"
            f" + {r['dispense_db_cpu_ms_per_request']})",
            f"baseline {r['baseline_cpu_ms_per_request']} ({r['baseline_web_cpu_ms_per_request']}"
            f" + {r['baseline_db_cpu_ms_per_request']})",
            f"{spread(r, 'cpu_ratio')} (target ≤ 2)",
        ),
        (
            "dispense p99 during a full CSV export vs without (ms)",
            f"{r['export_concurrent_p99_ms']}",
            f"without {r['export_quiet_p99_ms']}",
            f"{spread(r, 'export_p99_ratio')} (target ≤ 1.5)",
        ),
        (
            f"decision p50, {s['history_small']:,} vs {s['history_large']:,} audit entries (ms)",
            f"{r['decision_p50_ms_small_history']} → {r['decision_p50_ms_large_history']}",
            "interleaved",
            f"{spread(r, 'history_latency_ratio')} (target ≤ 1.3)",
        ),
        (
            f"sweep, {s['sweep_due']:,} due among {s['sweep_small']:,} vs {s['sweep_large']:,} (s)",
            f"{r['sweep_seconds_small']} → {r['sweep_seconds_large']}",
            "",
            f"{r['sweep_ratio']} (target ≤ 2)",
        ),
        (
            "full verification (entries/s)",
            f"{r['verify_entries_per_s']:,}",
            f"raw read-and-hash {r['raw_read_hash_entries_per_s']:,} ({r['verify_entries']:,} entries)",
            f"{spread(r, 'verify_fraction')} (target ≥ 0.5)",
        ),
        (
            "filtered audit page p95 / p50 (ms)",
            f"{r['audit_page_p95_ms']} / {r['audit_page_p50_ms']}",
            "5 filter kinds × 12",
            "target ≤ 50",
        ),
        ("CSV export (rows/s)", f"{r['export_rows_per_s']:,}", f"{r['export_rows_all']:,} rows", ""),
        (
            "CSV export peak memory (MB)",
            f"{r['export_peak_mb_small']} ({r['export_rows_small']:,} rows)"
            f" vs {r['export_peak_mb_large']} ({r['export_rows_large']:,} rows)",
            "",
            "independent of size",
        ),
    ]
    lines = [
        f"Mode `{r['mode']}`, commit `{r['commit']}`, {r['cores']} cores, {r['measured_at']}, {r['seconds']} s."
        " Ratios: median [min–max] of interleaved rounds.",
        "",
        "| measure | ours | context | ratio / target |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
