"""Issue 18 item 4 on the standard fronts: the rate limits of ``rems_service.ratelimit`` (failed
authentications per client address, decision requests per token) on ``/ncpdp/script``,
``/fhir`` and ``/cds-services`` with the API's counters, each 429 in the front's own format
with ``Retry-After``, and counted in ``/metrics``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.helpers import ADULT_MALE, NOW, approved_authorization, audit_count, make_user
from tests.interop import fronts as f
from tests.interop import messages as m

LIMITS = {"RATE_LIMIT_FAILED_AUTH": "5 per minute", "RATE_LIMIT_DECISIONS": "3 per minute"}


@pytest.fixture
def app(make_app):
    return make_app(**LIMITS)


def _retry_after(response) -> int:
    value = int(response.headers["Retry-After"])
    assert 0 < value <= 60
    return value


def test_failed_authentications_per_address_across_the_fronts_then_429_in_each_format(world):
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        # Five bad tokens spread over the three fronts and the API share one counter.
        wrong = [world.api.as_(f"rems_wrong{i}").at(NOW) for i in range(5)]
        f.ncpdp_error(f.ncpdp(wrong[0]), 401)
        f.ncpdp_error(f.ncpdp(wrong[1]), 401)
        f.fhir_error(f.fhir(wrong[2]), 401, "login")
        f.cds_error(f.cds(wrong[3]), 401)
        assert wrong[4].get("/api/v1/me").status_code == 401

        # The sixth attempt, on any front, is a 429 in that front's own format with Retry-After,
        # the right token included (a guesser cannot tell a hit from a miss).
        r = f.ncpdp(world.api.as_("rems_wrong-again").at(NOW))
        assert "Too many failed authentications" in f.ncpdp_error(r, 429) and _retry_after(r)
        r = f.ncpdp(world.api.as_(world.pharmacist_token).at(NOW))
        assert "Retry-After" in f.ncpdp_error(r, 429) and _retry_after(r)
        r = f.fhir(world.api.as_(world.prescriber_token).at(NOW))
        assert "Too many failed authentications" in f.fhir_error(r, 429, "throttled") and _retry_after(r)
        r = f.cds(world.api.as_(world.prescriber_token).at(NOW))
        assert "Too many failed authentications" in f.cds_error(r, 429) and _retry_after(r)
        assert world.api.as_(world.admin).get("/api/v1/me").status_code == 429

        # Another address is not affected.
        other = world.api.client.post(
            "/cds-services/lenalidomide-rems-order-sign",
            json=m.hook("order-sign", "RP-AAAAA-BBBBB", f.PRESCRIBER_NPI),
            headers={"Authorization": f"Bearer {world.prescriber_token}", "X-Rems-Now": NOW.isoformat()},
            environ_base={"REMOTE_ADDR": "10.1.2.3"},
        )
        assert other.status_code == 200, other.json

        # After the window the right credentials work again on every front.
        clock.shift(timedelta(seconds=61))
        assert f.fhir(world.api.as_(world.prescriber_token).at(NOW)).status_code == 200
        assert f.cds(world.api.as_(world.prescriber_token).at(NOW)).status_code == 200
        assert f.ncpdp(world.api.as_(world.pharmacist_token).at(NOW)).status_code == 200


def test_successful_calls_are_not_failed_authentications(world):
    with time_machine.travel(datetime.now(UTC), tick=False):
        for _ in range(8):
            assert world.api.get("/fhir/metadata").status_code == 200
            assert world.api.get("/cds-services").status_code == 200
        assert f.fhir(world.api.as_("rems_wrong").at(NOW)).status_code == 401


def test_ncpdp_decisions_per_token_then_429_recording_nothing(world):
    patient, auth = approved_authorization(world, ADULT_MALE)
    rems_id, number = patient["rems_patient_id"], auth["authorization_number"]
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for _ in range(3):  # one approval, then denials: every REMSRequest is a decision
            assert f.ncpdp(pharmacy, rems_id, number).status_code == 200
        before = audit_count(world.runtime)
        r = f.ncpdp(pharmacy, rems_id, number)
        assert "Too many decision requests" in f.ncpdp_error(r, 429) and _retry_after(r)
        assert audit_count(world.runtime) == before  # refused before anything was decided
        # The same token's API reads are not decisions; another pharmacist's token is not limited.
        assert pharmacy.get("/api/v1/dispenses").status_code == 200
        _user, other = make_user(
            world.runtime, "pharmacist", pharmacy_id=world.pharmacy.id, training_completed_at=NOW - timedelta(days=9)
        )
        assert f.ncpdp(world.api.as_(other).at(NOW), rems_id, number).status_code == 200
        # The counter is the API's: the same token's POST /dispenses is refused too.
        r = pharmacy.post("/api/v1/dispenses", json={})
        assert r.status_code == 429 and r.json["code"] == 429
        clock.shift(timedelta(seconds=61))
        assert f.ncpdp(pharmacy, rems_id, number).status_code == 200


@pytest.mark.parametrize("front", ["fhir", "cds"])
def test_fhir_and_cds_hooks_calls_per_token_then_429_in_their_format(world, front):
    patient, _auth = approved_authorization(world, ADULT_MALE)  # a decision with the prescriber's token
    _user, token = make_user(world.runtime, "prescriber", prescriber_id=world.prescriber.id)
    prescriber = world.api.as_(token).at(NOW)
    call = f.fhir if front == "fhir" else f.cds
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for _ in range(3):
            assert call(prescriber, patient["rems_patient_id"]).status_code == 200
        r = call(prescriber, patient["rems_patient_id"])
        if front == "fhir":
            assert "Too many decision requests" in f.fhir_error(r, 429, "throttled")
        else:
            assert "Too many decision requests" in f.cds_error(r, 429)
        _retry_after(r)
        # Discovery and metadata are not limited per token.
        assert world.api.get("/fhir/metadata").status_code == 200 and world.api.get("/cds-services").status_code == 200
        clock.shift(timedelta(seconds=61))
        assert call(prescriber, patient["rems_patient_id"]).status_code == 200


def test_rate_limit_refusals_on_the_fronts_are_counted(world):
    before = f.scrape(world)
    with time_machine.travel(datetime.now(UTC), tick=False):
        for i in range(5):
            f.fhir_error(f.fhir(world.api.as_(f"rems_wrong{i}").at(NOW)), 401, "login")
        f.fhir_error(f.fhir(world.api.as_("rems_wrong").at(NOW)), 429, "throttled")
        f.cds_error(f.cds(world.api.as_("rems_wrong").at(NOW)), 429)
        after = f.scrape(world)
    assert f.grew(before, after, "rems_rate_limit_refusals_total", limit="auth_failures_per_address") == 2
