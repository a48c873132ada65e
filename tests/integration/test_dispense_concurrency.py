"""R-DISP-5 and Idempotency-Key under real concurrency: PostgreSQL, the app served
by gunicorn with two worker processes (and threads), simultaneous clients.

SQLite serializes every writer, so it proves nothing here: PostgreSQL only.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from rems_service import create_app
from rems_service.db.models import Authorization, DecisionRecord, Dispense
from rems_service.services import authorizations, patients
from tests.helpers import complete_answers, make_pharmacy, make_prescriber, make_user
from tests.integration.server import call, gunicorn
from workflows.actors import Actor

CLIENTS = 20
ROUNDS = 50
PHARMACIES = 4


@pytest.fixture
def program_on_postgres(postgres_url):
    """A certified prescriber with one ready MALE_ADULT patient, four certified
    pharmacies with a trained pharmacist each, and ROUNDS + 1 open authorizations."""
    app = create_app({"DATABASE_URL": postgres_url})
    runtime = app.extensions["rems"]
    now = datetime.now(UTC)
    prescriber = make_prescriber(runtime, now=now)
    user, _token = make_user(runtime, "prescriber", prescriber_id=prescriber.id)
    actor = Actor(user.id, "prescriber", prescriber_id=prescriber.id)
    patient = patients.enroll(
        runtime.uow(),
        actor,
        now,
        runtime.program,
        first_name="Con",
        last_name="Current",
        date_of_birth=datetime(1960, 1, 1).date(),
        risk_category="MALE_ADULT",
        ppaf_signed=True,
        counseling_completed=True,
    )
    patients.record_survey(
        runtime.uow(),
        actor,
        now,
        runtime.program,
        patient.id,
        completed_at=now - timedelta(hours=1),
        answers=complete_answers("MALE_ADULT"),
    )
    tokens = []
    for i in range(PHARMACIES):
        pharmacy = make_pharmacy(runtime, ncpdp_id=f"{i + 1:07d}", now=now)
        tokens.append(
            make_user(runtime, "pharmacist", pharmacy_id=pharmacy.id, training_completed_at=now - timedelta(days=1))[1]
        )
    numbers = []
    for _ in range(ROUNDS + 1):
        answer = authorizations.request(
            runtime.uow,
            actor,
            now,
            runtime.program,
            authorizations.AuthorizationCommand.of(
                patient_id=patient.id,
                days_supply=28,
                quantity=28,
                strength_mg=25.0,
                prescriber_survey={"counseled_on_risks": True, "contraception_confirmed": True},
            ),
        )
        numbers.append(answer.result.authorization_number)
    assert all(numbers)
    yield runtime, patient.rems_patient_id, tokens, numbers
    runtime.engine.dispose()


def _dispense_body(number: str, rems_patient_id: str) -> dict:
    return {
        "authorization_number": number,
        "rems_patient_id": rems_patient_id,
        "days_supply": 28,
        "quantity": 28,
        "counseling": {"medication_guide_provided": True, "checklist_completed": True},
    }


def _storm(base: str, requests: list[tuple[str, dict, dict]]) -> list[tuple[int, bytes]]:
    """Fire every request at once (released together by a barrier)."""
    barrier = threading.Barrier(len(requests))

    def one(args):
        token, body, headers = args
        barrier.wait()
        status, raw, _ = call("POST", f"{base}/api/v1/dispenses", token, body, headers)
        return status, raw

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(one, requests))


def test_twenty_simultaneous_dispenses_of_one_authorization_give_one_approval(program_on_postgres, tmp_path):
    runtime, rems_patient_id, tokens, numbers = program_on_postgres
    with gunicorn(
        str(runtime.engine.url.render_as_string(hide_password=False)), tmp_path / "gunicorn.log", REMS_THREADS="4"
    ) as base:
        for round_no, number in enumerate(numbers[:ROUNDS]):
            body = _dispense_body(number, rems_patient_id)
            results = _storm(
                base,
                [
                    (tokens[i % PHARMACIES], body, {"Idempotency-Key": f"round-{round_no}-client-{i}"})
                    for i in range(CLIENTS)
                ],
            )
            assert all(status == 201 for status, _ in results), [(s, r[:200]) for s, r in results if s != 201]
            decided = [json.loads(raw) for _, raw in results]
            approved = [d for d in decided if d["decision"] == "approved"]
            assert len(approved) == 1, f"round {round_no}: {len(approved)} approvals"
            for denial in decided:
                if denial["decision"] == "denied":
                    assert [r["code"] for r in denial["reasons"]] == ["AUTHORIZATION_ALREADY_USED"]
    with runtime.session() as s:
        holding = s.exec(select(func.count()).select_from(Dispense)).one()
        assert holding == ROUNDS
        assert (
            s.exec(select(func.count()).select_from(DecisionRecord).where(DecisionRecord.kind == "dispense")).one()
            == ROUNDS * CLIENTS
        )
        confirmed = s.exec(
            select(func.count()).select_from(Authorization).where(Authorization.status == "confirmed")
        ).one()
        assert confirmed == ROUNDS


def test_concurrent_replays_of_one_idempotency_key_have_one_side_effect(program_on_postgres, tmp_path):
    runtime, rems_patient_id, tokens, numbers = program_on_postgres
    number = numbers[-1]
    body = _dispense_body(number, rems_patient_id)
    with gunicorn(
        str(runtime.engine.url.render_as_string(hide_password=False)), tmp_path / "gunicorn.log", REMS_THREADS="4"
    ) as base:
        results = _storm(base, [(tokens[0], body, {"Idempotency-Key": "the-one-key"}) for _ in range(CLIENTS)])
        # Afterwards, a plain replay returns the stored response.
        status, stored, headers = call(
            "POST", f"{base}/api/v1/dispenses", tokens[0], body, {"Idempotency-Key": "the-one-key"}
        )
    assert status == 201 and headers.get("Idempotent-Replayed") == "true"
    statuses = sorted({s for s, _ in results})
    assert set(statuses) <= {201, 409}, statuses
    bodies = {raw for s, raw in results if s == 201}
    assert bodies == {stored}, "every 201 is the one stored response"
    assert json.loads(stored)["decision"] == "approved"
    for s, raw in results:
        if s == 409:
            assert "Idempotency-Key" in json.loads(raw)["errors"]
    with runtime.session() as s:
        assert (
            s.exec(select(func.count()).select_from(DecisionRecord).where(DecisionRecord.kind == "dispense")).one() == 1
        )
        assert s.exec(select(func.count()).select_from(Dispense)).one() == 1
