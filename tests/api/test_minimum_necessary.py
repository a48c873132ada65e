"""Issue 18, item 6 (minimum necessary): a pharmacist's view of an authorization, and the
event of a denial for PATIENT_PRESCRIBER_MISMATCH."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rems_service.jobs.dispatch import background_for
from rems_service.services.authorizations import PHARMACIST_FIELDS
from tests.helpers import ADULT_FRP, NOW, add_test, approved_authorization, authorize, enrolled
from tests.receiver import Receiver

FREE_TEXT = "patient disclosed a relapse of alcohol use to me"


def test_a_pharmacist_sees_status_patient_risk_and_supply_only(world):
    _, decision = approved_authorization(world)
    number = decision["authorization_number"]
    voided = (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post(f"/api/v1/authorizations/{number}/void", json={"reason": FREE_TEXT})
    )
    assert voided.status_code == 200 and voided.json["status_reason"] == FREE_TEXT  # its prescriber sees it
    seen = world.api.as_(world.pharmacist_token).at(NOW).get(f"/api/v1/authorizations/{number}")
    assert seen.status_code == 200
    assert set(seen.json) == set(PHARMACIST_FIELDS)
    assert seen.json["status"] == "voided" and seen.json["rems_patient_id"] == decision["rems_patient_id"]
    assert (seen.json["risk_category"], seen.json["days_supply"], seen.json["quantity"]) == ("MALE_ADULT", 28, 28)
    assert FREE_TEXT not in seen.get_data(as_text=True)
    assert "status_reason" in world.api.as_(world.admin).at(NOW).get(f"/api/v1/authorizations/{number}").json


def test_a_pharmacist_never_reads_a_clinical_reason(world):
    patient, decision = approved_authorization(world, ADULT_FRP)
    assert add_test(world, patient["id"], NOW - timedelta(minutes=30), result="positive").status_code == 201
    number = decision["authorization_number"]
    prescriber_view = world.api.as_(world.prescriber_token).at(NOW).get(f"/api/v1/authorizations/{number}").json
    assert prescriber_view["status_reason"]  # the prescriber knows why the authorization ended
    seen = world.api.as_(world.other_pharmacist_token).at(NOW).get(f"/api/v1/authorizations/{number}")
    assert seen.status_code == 200 and "status_reason" not in seen.json
    assert prescriber_view["status_reason"] not in seen.get_data(as_text=True)
    assert "pregnan" not in seen.get_data(as_text=True).lower()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_a_mismatch_denial_event_names_nothing_the_caller_did_not_send(world, make_app, receiver):
    app = make_app(RELAY_AFTER_REQUEST=True, WEBHOOK_ALLOW_LOOPBACK=True)
    world.api.client, world.runtime = app.test_client(), app.extensions["rems"]
    r = world.api.as_(world.other_prescriber_token).post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["authorization.denied"]}
    )
    assert r.status_code == 201, r.json
    patient_of_a = enrolled(world, ADULT_FRP)  # prescriber A's patient
    denied = authorize(world, patient_of_a, token=world.other_prescriber_token)  # B tries A's patient
    assert denied.status_code == 201 and [x["code"] for x in denied.json["reasons"]] == ["PATIENT_PRESCRIBER_MISMATCH"]
    assert receiver.wait_for(1)
    assert background_for(world.runtime).wait_idle(30)
    (got,) = receiver.received
    assert got.body["type"] == "authorization.denied"
    data = got.body["data"]
    assert data["patient_id"] == patient_of_a["id"]  # what B sent
    assert data["prescriber_id"] == str(world.other_prescriber.id)  # B itself
    assert "rems_patient_id" not in data
    assert patient_of_a["rems_patient_id"] not in got.raw.decode()
    assert patient_of_a["rems_patient_id"] not in denied.get_data(as_text=True)
