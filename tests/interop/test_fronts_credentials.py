"""Issue 18 on the standard fronts, beyond the rate limits: a disabled user's (or replaced, or
expired) token refused on every front in its own format, and a decision made over NCPDP
counted in ``/metrics`` exactly as the API's; rate-limit refusals on the fronts counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from tests.helpers import ADULT_MALE, NOW, approved_authorization, audit_count
from tests.interop import fronts as f
from tests.interop import messages as m


def _user_id(world, token):
    return world.api.as_(token).get("/api/v1/me").json["id"]


def test_a_disabled_users_token_is_refused_on_every_front(world):
    patient, auth = approved_authorization(world, ADULT_MALE)
    rems_id, number = patient["rems_patient_id"], auth["authorization_number"]
    admin = world.api.as_(world.admin)
    pharmacist_id, prescriber_id = _user_id(world, world.pharmacist_token), _user_id(world, world.prescriber_token)
    initiation = m.initiation(rems_id)
    assert m.send(world.api.as_(world.pharmacist_token).at(NOW), initiation).status_code == 200
    assert f.fhir(world.api.as_(world.prescriber_token).at(NOW), rems_id).status_code == 200
    assert f.cds(world.api.as_(world.prescriber_token).at(NOW), rems_id).status_code == 200

    assert admin.post(f"/api/v1/users/{pharmacist_id}/disable").status_code == 200
    assert admin.post(f"/api/v1/users/{prescriber_id}/disable").status_code == 200
    before = audit_count(world.runtime)
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    assert "bearer token" in f.ncpdp_error(m.send(pharmacy, m.rems_request(number, rems_id)), 401)
    assert "bearer token" in f.ncpdp_error(m.send(pharmacy, initiation), 401)
    pharmacist_fhir = m.fhir_post(world.api.as_(world.pharmacist_token).at(NOW), m.etasu(rems_id, number))
    assert "bearer token" in f.fhir_error(pharmacist_fhir, 401, "login")
    prescriber = world.api.as_(world.prescriber_token).at(NOW)
    assert "bearer token" in f.fhir_error(f.fhir(prescriber, rems_id), 401, "login")
    assert "bearer token" in f.cds_error(f.cds(prescriber, rems_id), 401)
    assert audit_count(world.runtime) == before  # nothing decided, nothing read

    # Enabled again, the same tokens work on the next request.
    assert admin.post(f"/api/v1/users/{pharmacist_id}/enable").status_code == 200
    assert admin.post(f"/api/v1/users/{prescriber_id}/enable").status_code == 200
    assert m.send(world.api.as_(world.pharmacist_token).at(NOW), initiation).status_code == 200
    assert f.cds(world.api.as_(world.prescriber_token).at(NOW), rems_id).status_code == 200


def test_a_replaced_or_expired_token_is_refused_on_every_front(world):
    admin = world.api.as_(world.admin)
    prescriber_id = _user_id(world, world.prescriber_token)
    expires = datetime.now(UTC) + timedelta(hours=1)
    r = admin.post(f"/api/v1/users/{prescriber_id}/token", json={"expires_at": expires.isoformat()})
    assert r.status_code == 200, r.json
    new = r.json["token"]
    f.refused_in_each_format(world, world.prescriber_token)  # the old token died at once
    assert f.cds(world.api.as_(new).at(NOW)).status_code == 200
    with time_machine.travel(expires + timedelta(seconds=1), tick=False):
        f.refused_in_each_format(world, new)


def test_an_ncpdp_decision_is_counted_in_metrics_as_the_apis(world):
    patient, auth = approved_authorization(world, ADULT_MALE)
    rems_id, number = patient["rems_patient_id"], auth["authorization_number"]
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    before = f.scrape(world)
    assert m.reply(f.ncpdp(pharmacy, rems_id, number)).find(".//Approved") is not None
    retransmitted = m.rems_request(number, rems_id, message_id="MSG-METRICS-1")
    denied = m.send(pharmacy, retransmitted)  # AUTHORIZATION_ALREADY_USED
    assert m.reply(denied).find(".//Denied") is not None
    assert m.send(pharmacy, retransmitted).status_code == 200  # an idempotent replay: not a decision
    after = f.scrape(world)
    assert f.grew(before, after, "rems_decisions_total", endpoint="dispenses", outcome="approved") == 1
    assert f.grew(before, after, "rems_decisions_total", endpoint="dispenses", outcome="denied") == 1
    assert (
        f.grew(
            before,
            after,
            "rems_decision_reasons_total",
            endpoint="dispenses",
            outcome="denied",
            reason="AUTHORIZATION_ALREADY_USED",
        )
        == 1
    )
    assert f.grew(before, after, "rems_decision_duration_seconds_count", endpoint="dispenses", outcome="approved") == 1
    assert f.grew(before, after, "rems_decision_duration_seconds_count", endpoint="dispenses", outcome="denied") == 1
