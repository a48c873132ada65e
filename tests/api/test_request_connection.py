"""One database connection per request, authentication included, and no pre-ping
round trip per checkout: a connection found dropped is replaced and the request
answered (issue 16). PostgreSQL only: SQLite has no connections to share or drop."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from tests.helpers import approved_authorization, dispense


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def checkouts(runtime: Any) -> list[int]:
    seen: list[int] = []

    def count(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        seen.append(id(dbapi_connection))

    event.listen(runtime.engine, "checkout", count)
    yield seen
    event.remove(runtime.engine, "checkout", count)


@pytest.fixture
def statements(runtime: Any) -> list[str]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    yield seen
    event.remove(runtime.engine, "before_cursor_execute", record)


def test_a_decision_request_checks_out_one_connection_and_pings_nothing(world, checkouts, statements):
    patient, authorization = approved_authorization(world)
    checkouts.clear()
    statements.clear()
    r = dispense(world, authorization["authorization_number"], patient["rems_patient_id"])
    assert r.status_code == 201 and r.json["decision"] == "approved", r.json
    assert len(checkouts) == 1, "authentication and the decision share the request's connection"
    assert not [s for s in statements if s.strip().upper() == "SELECT 1"], "no pre-ping round trip"
    assert "users" in statements[0], "the first statement on the connection is the authentication read"


def test_a_denied_decision_and_a_read_also_use_one_connection(world, checkouts):
    r = dispense(world, "RA-0000-0000-0000", "RP-00000-00000")
    assert r.status_code == 201 and r.json["decision"] == "denied"
    assert len(checkouts) == 1
    checkouts.clear()
    assert world.api.as_(world.pharmacist_token).get("/api/v1/dispenses").status_code == 200
    assert len(checkouts) == 1


def test_a_dropped_pooled_connection_is_replaced_and_the_request_answered(world, runtime, database_url):
    patient, authorization = approved_authorization(world)
    # Every pooled connection of the app is cut (as a database restart would), behind its back.
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        cut = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    assert cut >= 1
    r = dispense(world, authorization["authorization_number"], patient["rems_patient_id"])
    assert r.status_code == 201 and r.json["decision"] == "approved", r.json
    assert world.api.as_(world.pharmacist_token).get("/api/v1/dispenses").status_code == 200
