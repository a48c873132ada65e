"""What the NCPDP front adds to a dispense decision, in-process: a ``REMSRequest`` through
``POST /ncpdp/script`` beside the same decision through ``POST /api/v1/dispenses``, with
and without an ``Idempotency-Key`` (a REMSRequest's MessageID is its key), interleaved
in rotating order so the machine's noise falls on all three alike.

Each request is an approved dispense decision on its own issued authorization (half of
the pairs) or a denied one on an unknown number (the other half), through the Flask test
client on a database of its own (``rems_bench_interop``, dropped and recreated on the
machine's PostgreSQL). Figures, never assertions: bench/README.md records them.

    python -m bench.interop [--pairs 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("REMS_LOG_LEVEL", "WARNING")

from bench.run import seed_authorizations, seed_participants, seed_patients  # noqa: E402
from rems_service import create_app  # noqa: E402
from rems_service.db import migrate  # noqa: E402
from rems_service.db.engine import build_engine  # noqa: E402
from workflows.identifiers import new_reference_number  # noqa: E402

DATABASE = "rems_bench_interop"
COUNSELING = {"medication_guide_provided": True, "checklist_completed": True}
SCALE = {"prescribers": 4, "pharmacies": 1, "patients": 700}


def fresh_database(base_url: str) -> str:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    url = make_url(base_url).set(database=DATABASE).render_as_string(hide_password=False)
    engine = build_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def rems_request(number: str, rems_patient_id: str, ncpdp_id: str, i: int) -> bytes:
    """A REMSRequest as a pharmacy system sends it (INTEROP.md), with both attestations."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Message DatatypesVersion="20170715" TransportVersion="20170715" '
        'TransactionDomain="SCRIPT" TransactionVersion="20170715" StructuresVersion="20170715" '
        'ECLVersion="20170715"><Header><To Qualifier="ZZZ">REMS</To><From Qualifier="P">'
        f"{ncpdp_id}</From><MessageID>BENCH-{i}</MessageID><SentTime>2026-11-27T10:00:00Z</SentTime></Header>"
        f"<Body><REMSRequest><Request><SolicitedModel><REMSCaseID>{number}</REMSCaseID><REMSAttestation>"
        "<MedicationGuideProvided>Y</MedicationGuideProvided><CounselingChecklistCompleted>Y"
        "</CounselingChecklistCompleted></REMSAttestation></SolicitedModel></Request><Patient><HumanPatient>"
        f"<Identification><REMSPatientID>{rems_patient_id}</REMSPatientID></Identification></HumanPatient>"
        f"</Patient><Pharmacy><Identification><NCPDPID>{ncpdp_id}</NCPDPID></Identification></Pharmacy>"
        "<Prescriber><NonVeterinarian><Identification><NPI>1234567893</NPI></Identification></NonVeterinarian>"
        "</Prescriber><MedicationPrescribed><DrugCoded><ProductCode><Code>59572041028</Code><Qualifier>ND"
        "</Qualifier></ProductCode></DrugCoded><Quantity><Value>28</Value></Quantity><DaysSupply>28</DaysSupply>"
        "</MedicationPrescribed></REMSRequest></Body></Message>"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("REMS_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--pairs", type=int, default=400, help="rounds of the three timed (after 20 warm-up rounds)")
    args = parser.parse_args()
    url = fresh_database(args.database_url)
    app = create_app({"DATABASE_URL": url, "RELAY_AFTER_REQUEST": False})
    runtime = app.extensions["rems"]
    participants = seed_participants(runtime, SCALE)
    patients = seed_patients(runtime.engine, SCALE, participants)
    _user, token, pharmacy_id = participants["pharmacists"][0]
    with runtime.engine.connect() as conn:
        ncpdp_id = conn.execute(
            text("SELECT ncpdp_id FROM pharmacies WHERE id = :id"), {"id": pharmacy_id}
        ).scalar_one()
    now = datetime.now(UTC)
    pairs = args.pairs + 20
    auths = seed_authorizations(runtime.engine, patients, pairs * 3, lambda i: now + timedelta(days=29))
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    fronts = ("api", "api+key", "ncpdp")
    times: dict[str, dict[str, list[float]]] = {front: {"approved": [], "denied": []} for front in fronts}

    def case(i: int, front: str) -> tuple[str, str, str]:
        if i % 2 == 0:
            a = auths[3 * i + fronts.index(front)]
            return "approved", a["number"], a["rems_patient_id"]
        return "denied", new_reference_number("RA"), "RP-00000-00000"

    def api(i: int, keyed: bool = False) -> tuple[str, float]:
        kind, number, rems_id = case(i, "api+key" if keyed else "api")
        body = {"authorization_number": number, "rems_patient_id": rems_id, "days_supply": 28, "quantity": 28}
        headers = {**bearer, "Idempotency-Key": f"bench-{i}"} if keyed else bearer
        started = time.perf_counter()
        r = client.post("/api/v1/dispenses", json={**body, "counseling": COUNSELING}, headers=headers)
        elapsed = time.perf_counter() - started
        assert r.status_code == 201 and (r.json or {}).get("decision") == kind, r.data
        return kind, elapsed

    def api_keyed(i: int) -> tuple[str, float]:
        return api(i, keyed=True)

    def ncpdp(i: int) -> tuple[str, float]:
        kind, number, rems_id = case(i, "ncpdp")
        data = rems_request(number, rems_id, ncpdp_id, i)
        started = time.perf_counter()
        r = client.post("/ncpdp/script", data=data, headers={**bearer, "Content-Type": "application/xml"})
        elapsed = time.perf_counter() - started
        expected = b"<Approved>" if kind == "approved" else b"<Denied>"
        assert r.status_code == 200 and expected in r.data, r.data
        return kind, elapsed

    calls = {"api": api, "api+key": api_keyed, "ncpdp": ncpdp}
    for i in range(pairs):
        order = fronts[i % 3 :] + fronts[: i % 3]  # each front first, second and last in turn
        for front in order:
            kind, elapsed = calls[front](i)
            if i >= 20:  # warm-up: prepared statements, caches
                times[front][kind].append(elapsed * 1000)
    result: dict[str, Any] = {}
    for front, kinds in times.items():
        result[front] = {kind: round(median(values), 2) for kind, values in kinds.items()}
        result[front]["all"] = round(median(kinds["approved"] + kinds["denied"]), 2)
    print(f"{args.pairs} rounds, interleaved, in-process (median ms per request):")
    for kind in ("approved", "denied", "all"):
        a, k, n = result["api"][kind], result["api+key"][kind], result["ncpdp"][kind]
        print(
            f"  {kind:8}  JSON API {a:6.2f}  with Idempotency-Key {k:6.2f}  NCPDP REMSRequest {n:6.2f}"
            f"  NCPDP/keyed {n / k:.3f}  NCPDP/API {n / a:.3f}"
        )
    runtime.engine.dispose()


if __name__ == "__main__":
    main()
