"""FHIR ``metadata`` and ``$rems-etasu`` and the CDS Hooks services beyond the scenario:
who may ask what, the other drugs, and each card."""

from __future__ import annotations

from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.parameters import Parameters

from tests.helpers import ADULT_MALE, NOW, approved_authorization, audit_count, enrolled
from tests.interop import messages as m


def test_metadata_is_an_r4_capability_statement_naming_the_operation(world):
    r = world.api.get("/fhir/metadata")
    assert r.status_code == 200 and r.mimetype == "application/fhir+json"
    CapabilityStatement(r.json, strict=True)
    assert r.json["fhirVersion"] == "4.0.1"
    (resource,) = r.json["rest"][0]["resource"]
    assert resource["type"] == "GuidanceResponse" and resource["operation"][0]["name"] == "rems-etasu"


def test_etasu_answers_are_valid_r4_and_recorded_as_reads(world):
    patient, auth = approved_authorization(world, ADULT_MALE)
    rems_id, number = patient["rems_patient_id"], auth["authorization_number"]
    before = audit_count(world.runtime)
    # A pharmacist names the patient with the authorization number (as caseNumber, too).
    body = m.etasu(rems_id, number)
    body["parameter"][-1]["name"] = "caseNumber"
    r = m.fhir_post(world.api.as_(world.pharmacist_token).at(NOW), body)
    assert r.status_code == 200, r.json
    Parameters(r.json, strict=True)
    guidance = r.json["parameter"][0]["resource"]
    assert guidance["status"] == "success"
    outputs = guidance["contained"][0]["parameter"]
    names = [p["name"] for p in outputs]
    assert names == [
        "Prescriber certification",
        "Patient enrollment",
        "Patient status",
        "Patient survey",
        "Prescription authorization",
        "case_number",
    ]  # no pregnancy testing for a male patient
    assert outputs[-1]["valueString"] == number
    assert guidance["subject"]["identifier"]["value"] == rems_id
    assert audit_count(world.runtime) == before + 1
    entry = world.api.as_(world.auditor).get("/api/v1/audit/events?action=audit.read&include_reads=true").json
    read = next(i for i in entry["items"] if i["details"].get("operation") == "fhir.rems-etasu")
    assert read["details"]["channel"] == "fhir" and len(read["details"]["message_digest"]) == 64


def test_a_pharmacist_needs_the_case_number_and_sees_only_its_patient(world):
    patient, auth = approved_authorization(world, ADULT_MALE)
    pharmacist = world.api.as_(world.pharmacist_token).at(NOW)
    r = m.fhir_post(pharmacist, m.etasu(patient["rems_patient_id"]))
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"
    r = m.fhir_post(pharmacist, m.etasu("RP-AAAAA-BBBBB", auth["authorization_number"]))
    assert r.json["parameter"][0]["resource"]["status"] == "failure"


def test_unknown_and_other_prescribers_patients_are_failure(world):
    patient = enrolled(world, ADULT_MALE)
    r = m.fhir_post(world.api.as_(world.other_prescriber_token).at(NOW), m.etasu(patient["rems_patient_id"]))
    guidance = r.json["parameter"][0]["resource"]
    assert guidance["status"] == "failure" and "contained" not in guidance
    r = m.fhir_post(world.api.as_(world.prescriber_token).at(NOW), m.etasu(case_number="RA-00000-00000-00000"))
    assert r.json["parameter"][0]["resource"]["status"] == "failure"


def test_another_drug_is_422_and_an_auditor_403(world):
    patient = enrolled(world, ADULT_MALE)
    r = m.fhir_post(world.api.as_(world.prescriber_token).at(NOW), m.etasu(patient["rems_patient_id"], code="197361"))
    assert r.status_code == 422 and r.json["issue"][0]["code"] == "not-supported"
    r = m.fhir_post(world.api.as_(world.auditor).at(NOW), m.etasu(patient["rems_patient_id"]))
    assert r.status_code == 403 and r.json["resourceType"] == "OperationOutcome"
    r = m.fhir_post(world.api.at(NOW), m.etasu(patient["rems_patient_id"]))
    assert r.status_code == 401


def test_discovery_lists_the_three_services(world):
    r = world.api.get("/cds-services")
    assert r.status_code == 200
    services = {s["id"]: s for s in r.json["services"]}
    assert {sid: s["hook"] for sid, s in services.items()} == {
        "lenalidomide-rems-order-sign": "order-sign",
        "lenalidomide-rems-order-select": "order-select",
        "lenalidomide-rems-patient-view": "patient-view",
    }
    for service in services.values():
        assert service["prefetch"] == {"patient": "Patient/{{context.patientId}}", "practitioner": "{{context.userId}}"}


def _cards(world, service: str, body: dict) -> list[dict]:
    r = world.api.as_(world.prescriber_token).at(NOW).post(f"/cds-services/{service}", json=body)
    assert r.status_code == 200, r.json
    for card in r.json["cards"]:
        assert len(card["summary"]) < 140 and card["source"]["label"] == "Lenalidomide REMS"
    return r.json["cards"]


def test_cards(world):
    npi = world.prescriber.npi
    # A non-lenalidomide order: no cards.
    assert _cards(world, "lenalidomide-rems-order-select", m.hook("order-select", None, npi, code="197361")) == []
    # A patient with no REMS patient ID, or one not enrolled with this prescriber: not enrolled.
    (card,) = _cards(world, "lenalidomide-rems-order-sign", m.hook("order-sign", None, npi))
    assert (card["indicator"], card["summary"]) == ("warning", "Patient is not enrolled in the Lenalidomide REMS")
    assert card["links"][0]["type"] == "absolute"
    (card,) = _cards(world, "lenalidomide-rems-order-sign", m.hook("order-sign", "RP-AAAAA-BBBBB", npi))
    assert card["summary"] == "Patient is not enrolled in the Lenalidomide REMS"
    # patient-view of a patient outside the program: nothing to say.
    assert _cards(world, "lenalidomide-rems-patient-view", m.hook("patient-view", None, npi)) == []
    # A discontinued patient: critical.
    patient, _auth = approved_authorization(world, ADULT_MALE)
    prescriber = world.api.as_(world.prescriber_token).at(NOW)
    assert prescriber.post(f"/api/v1/patients/{patient['id']}/discontinue", json={"reason": "x"}).status_code == 200
    (card,) = _cards(world, "lenalidomide-rems-patient-view", m.hook("patient-view", patient["rems_patient_id"], npi))
    assert card["indicator"] == "critical" and "R-PAT-2" in card["detail"]
