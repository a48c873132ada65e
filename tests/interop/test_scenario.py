"""Must show 1: the lenalidomide scenario over the standard fronts only, after enrollment,
testing and surveys through the API."""

from __future__ import annotations

from datetime import timedelta

from rems_service.services import decisions
from tests.helpers import ADULT_FRP, NOW, add_survey, add_test, authorize, complete_answers, enrolled
from tests.interop import messages as m


def _decisions(world, channel: str) -> list[dict]:
    r = world.api.as_(world.auditor).get("/api/v1/audit/events?action=dispense.decided&limit=100")
    assert r.status_code == 200, r.json
    return [item for item in r.json["items"] if item["details"].get("channel") == channel]


def test_full_scenario_over_the_fronts(world):
    api = world.api.at(NOW)
    patient = enrolled(world, ADULT_FRP)
    rems_id = patient["rems_patient_id"]
    npi = world.prescriber.npi

    # Order-sign before any test or survey: the outstanding requirements, each named.
    r = api.as_(world.prescriber_token).post(
        "/cds-services/lenalidomide-rems-order-sign", json=m.hook("order-sign", rems_id, npi)
    )
    assert r.status_code == 200, r.json
    (card,) = r.json["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"] == "Lenalidomide REMS: 2 requirement(s) outstanding"
    assert "Pregnancy testing" in card["detail"] and "R-SURV-1" in card["detail"]
    assert card["links"][0]["type"] == "absolute" and patient["id"] in card["links"][0]["url"]
    assert card["source"]["label"] == "Lenalidomide REMS"

    # $rems-etasu: each requirement's state.
    r = m.fhir_post(api.as_(world.prescriber_token), m.etasu(rems_id))
    assert r.status_code == 200 and r.mimetype == "application/fhir+json", r.data
    guidance = r.json["parameter"][0]["resource"]
    assert r.json["parameter"][0]["name"] == "rems-etasu"
    assert guidance["status"] == "data-required"
    assert guidance["outputParameters"] == {"reference": "#etasuOutputParameters"}
    outputs = {p["name"]: p["resource"] for p in guidance["contained"][0]["parameter"]}
    assert {name: res["status"] for name, res in outputs.items()} == {
        "Prescriber certification": "success",
        "Patient enrollment": "success",
        "Patient status": "success",
        "Pregnancy testing": "data-required",
        "Patient survey": "data-required",
    }
    assert "PREGNANCY_TEST_MISSING" in outputs["Pregnancy testing"]["note"][0]["text"]
    assert "PATIENT_SURVEY_OVERDUE" in outputs["Patient survey"]["note"][0]["text"]

    # The tests and the survey, through the API.
    assert add_test(world, patient["id"], NOW - timedelta(days=12), at=NOW - timedelta(days=11)).status_code == 201
    assert add_test(world, patient["id"], NOW - timedelta(hours=3)).status_code == 201
    assert add_survey(world, patient["id"], complete_answers("FRP_ADULT")).status_code == 201

    r = api.as_(world.prescriber_token).post(
        "/cds-services/lenalidomide-rems-order-sign", json=m.hook("order-sign", rems_id, npi)
    )
    (card,) = r.json["cards"]
    assert (card["indicator"], card["summary"]) == ("info", "Lenalidomide REMS requirements met")
    r = m.fhir_post(api.as_(world.prescriber_token), m.etasu(rems_id))
    assert r.json["parameter"][0]["resource"]["status"] == "success"

    # The prescriber's authorization (API).
    auth = authorize(world, patient)
    assert auth.json["decision"] == "approved", auth.json
    number = auth.json["authorization_number"]

    pharmacy = api.as_(world.pharmacist_token)
    # REMSInitiationRequest → Open with the authorization number.
    r = m.send(pharmacy, m.initiation(rems_id))
    assert r.status_code == 200 and r.mimetype == "application/xml", r.data
    root = m.reply(r)
    assert m.at(root, "Body/REMSInitiationResponse/Response/ResponseStatus/Open/REMSCaseID") == number
    assert m.at(root, "Header/RelatesToMessageID") == "MSG-1"
    assert m.at(root, "Header/To") == "1234567" and m.at(root, "Header/From") == "LENALIDOMIDE-REMS"
    assert m.at(root, "Header/MessageID") not in (None, "MSG-1")
    assert root.get("TransactionVersion") == "20170715"

    # REMSRequest → Approved with a confirmation number and the window's end.
    r = m.send(pharmacy, m.rems_request(number, rems_id))
    root = m.reply(r)
    approved = root.find("Body/REMSResponse/Response/ResponseStatus/Approved")
    assert approved is not None, r.data
    confirmation = approved.findtext("REMSAuthorizationNumber")
    assert confirmation.startswith("RC-") and approved.findtext("REMSCaseID") == number
    assert approved.findtext("AuthorizationPeriod/ExpirationDate/DateTime") == "2026-06-16T12:00:00Z"

    # RxFill Dispensed → Status 000, the dispense completed.
    r = m.send(pharmacy, m.rx_fill(confirmation))
    root = m.reply(r)
    assert r.status_code == 200 and m.at(root, "Body/Status/Code") == "000", r.data
    got = pharmacy.get(f"/api/v1/dispenses/{confirmation}")
    assert got.json["status"] == "dispensed"

    # A second REMSRequest → Denied EC.
    r = m.send(pharmacy, m.rems_request(number, rems_id, message_id="MSG-4"))
    denied = m.reply(r).find("Body/REMSResponse/Response/ResponseStatus/Denied")
    assert denied is not None and denied.findtext("DeniedReasonCode") == "EC", r.data
    assert "AUTHORIZATION_ALREADY_USED (R-DISP-5)" in denied.findtext("REMSNote")

    # Each decision once in the audit log, channel ncpdp, with the message's digest; each replays.
    entries = _decisions(world, "ncpdp")
    assert [e["outcome"] for e in entries] == ["denied", "approved"]
    assert all(len(e["details"]["message_digest"]) == 64 for e in entries)
    assert len({e["details"]["decision_id"] for e in entries}) == 2
    for entry in entries:
        assert decisions.replay(world.runtime.uow(), world.runtime.program, entry["seq"]).matches
    # The hand-over names its channel too.
    r = world.api.as_(world.auditor).get("/api/v1/audit/events?action=dispense.completed")
    assert r.json["items"][0]["details"]["channel"] == "ncpdp"
