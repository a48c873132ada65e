"""Must show 2 and 4: every reason code of REMS_RULES.md and CLINICAL_RULES.md maps to
INTEROP.md's NCPDP code; denials over NCPDP carry one code chosen in the documented order
and every reason in REMSNote; the mcode prototype's REMSRequest is a well-formed Denied EO."""

from __future__ import annotations

import pytest

from rems_service.interop import ncpdp_codes
from tests.api.test_clinical import lab_id, start_course
from tests.helpers import (
    ADULT_FRP,
    ADULT_MALE,
    NOW,
    approved_authorization,
    audit_count,
    authorize,
    make_user,
    ready_patient,
)
from tests.interop import messages as m
from workflows.rules import Code

# INTEROP.md's table, row by row: (our code, the participants' statuses, the NCPDP code).
TABLE = [
    (Code.PATIENT_NOT_ELIGIBLE, {"patient": "halted"}, "EZ"),
    (Code.PATIENT_NOT_ELIGIBLE, {"patient": "discontinued"}, "EZ"),
    (Code.PATIENT_NOT_ELIGIBLE, {"patient": "needs_intervention"}, "EZ"),
    (Code.PREGNANCY_TEST_POSITIVE, {}, "EZ"),
    (Code.PREGNANCY_TEST_MISSING, {}, "EM"),
    (Code.PREGNANCY_TEST_OUT_OF_WINDOW, {}, "EM"),
    (Code.PREGNANCY_TEST_STALE, {}, "EM"),
    (Code.PATIENT_SURVEY_OVERDUE, {}, "EM"),
    (Code.AUTHORIZATION_PATIENT_MISMATCH, {}, "EM"),
    (Code.PATIENT_PRESCRIBER_MISMATCH, {}, "EM"),
    (Code.PRESCRIBER_NOT_CERTIFIED, {"prescriber": "suspended"}, "EX"),
    (Code.PRESCRIBER_NOT_CERTIFIED, {"prescriber": "decertified"}, "EX"),
    (Code.PRESCRIBER_NOT_CERTIFIED, {"prescriber": "pending"}, "ES"),
    (Code.PRESCRIBER_SURVEY_INCOMPLETE, {}, "ES"),
    (Code.PHARMACY_NOT_CERTIFIED, {"pharmacy": "suspended"}, "EY"),
    (Code.PHARMACY_NOT_CERTIFIED, {"pharmacy": "decertified"}, "EY"),
    (Code.PHARMACY_CERTIFICATION_EXPIRED, {"pharmacy": "expired"}, "EY"),
    (Code.PHARMACY_NOT_CERTIFIED, {"pharmacy": "pending"}, "EO"),
    (Code.PHARMACIST_NOT_TRAINED, {}, "EO"),
    (Code.COUNSELING_INCOMPLETE, {}, "EO"),
    (Code.AUTHORIZATION_NOT_FOUND, {}, "EC"),
    (Code.AUTHORIZATION_EXPIRED, {}, "EC"),
    (Code.AUTHORIZATION_VOIDED, {}, "EC"),
    (Code.AUTHORIZATION_ALREADY_USED, {}, "EC"),
    (Code.DAYS_SUPPLY_EXCEEDED, {}, "EC"),
    (Code.QUANTITY_EXCEEDED, {}, "EC"),
    (Code.EARLY_REFILL, {}, "EC"),
    (Code.TREATMENT_ON_HOLD, {}, "EC"),
    (Code.CLINICAL_ALERT_UNACKNOWLEDGED, {}, "EC"),
]


def test_the_table_covers_every_reason_code_of_both_catalogues():
    # ``Code`` is held equal to docs/catalogues/ by tests/unit/test_rule_catalogue.py.
    assert {code for code, _statuses, _ncpdp in TABLE} == set(Code)


@pytest.mark.parametrize(("code", "statuses", "expected"), TABLE, ids=lambda v: getattr(v, "value", None))
def test_each_reason_code_maps_to_its_ncpdp_code(code, statuses, expected):
    assert ncpdp_codes.ncpdp_code(code.value, statuses) == expected


def test_one_code_is_chosen_in_the_documented_order_patient_first():
    assert ncpdp_codes.choose(["EC", "EO", "EM"]) == "EM"
    assert ncpdp_codes.choose(["EC", "EY", "EO"]) == "EY"
    assert ncpdp_codes.choose(["ER", "EC"]) == "EC"
    assert ncpdp_codes.ORDER == ("EZ", "EM", "EX", "ES", "EY", "EO", "EC", "ER")


def _denied(response):
    assert response.status_code == 200, response.data
    denied = m.reply(response).find("Body/REMSResponse/Response/ResponseStatus/Denied")
    assert denied is not None, response.data
    return denied.findtext("DeniedReasonCode"), denied.findtext("REMSNote")


def _codes(note: str) -> list[str]:
    """The reason codes of a REMSNote (the clinical warnings after ``WARNINGS_MARK`` left out)."""
    reasons = note.partition(ncpdp_codes.WARNINGS_MARK)[0]
    return [part.split(" (", 1)[0] for part in reasons.split("; ")]


def test_denials_over_ncpdp_carry_the_mapped_code_and_every_reason(world):
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    patient, auth = approved_authorization(world, ADULT_MALE)
    rems_id, number = patient["rems_patient_id"], auth["authorization_number"]

    # COUNSELING_INCOMPLETE, DAYS_SUPPLY_EXCEEDED, QUANTITY_EXCEEDED together: EO first.
    code, note = _denied(m.send(pharmacy, m.rems_request(number, rems_id, attest=False, quantity=40, days=30)))
    assert code == "EO"
    assert _codes(note) == ["COUNSELING_INCOMPLETE", "DAYS_SUPPLY_EXCEEDED", "QUANTITY_EXCEEDED"]
    assert "COUNSELING_INCOMPLETE (R-COUNSEL-1): " in note

    # AUTHORIZATION_NOT_FOUND: EC.
    code, note = _denied(m.send(pharmacy, m.rems_request("RA-00000-00000-00000", rems_id)))
    assert (code, _codes(note)) == ("EC", ["AUTHORIZATION_NOT_FOUND"])

    # AUTHORIZATION_PATIENT_MISMATCH: EM.
    code, note = _denied(m.send(pharmacy, m.rems_request(number, "RP-AAAAA-BBBBB")))
    assert (code, _codes(note)) == ("EM", ["AUTHORIZATION_PATIENT_MISMATCH"])

    # An untrained pharmacist of the same pharmacy: PHARMACIST_NOT_TRAINED, EO.
    untrained = make_user(world.runtime, "pharmacist", pharmacy_id=world.pharmacy.id)[1]
    code, note = _denied(m.send(world.api.as_(untrained).at(NOW), m.rems_request(number, rems_id)))
    assert (code, _codes(note)) == ("EO", ["PHARMACIST_NOT_TRAINED"])

    # The pharmacy suspended: PHARMACY_NOT_CERTIFIED is EY (deactivated), before COUNSELING's EO.
    admin = world.api.as_(world.admin).at(NOW)
    assert admin.post(f"/api/v1/pharmacies/{world.pharmacy.id}/suspend", json={"reason": "audit"}).status_code == 200
    code, note = _denied(m.send(pharmacy, m.rems_request(number, rems_id, attest=False)))
    assert (code, _codes(note)) == ("EY", ["PHARMACY_NOT_CERTIFIED", "COUNSELING_INCOMPLETE"])
    assert admin.post(f"/api/v1/pharmacies/{world.pharmacy.id}/reinstate", json={}).status_code == 200

    # The authorization voided by the prescriber: AUTHORIZATION_VOIDED, EC.
    prescriber = world.api.as_(world.prescriber_token).at(NOW)
    assert prescriber.post(f"/api/v1/authorizations/{number}/void", json={}).status_code == 200
    code, note = _denied(m.send(pharmacy, m.rems_request(number, rems_id)))
    assert (code, _codes(note)) == ("EC", ["AUTHORIZATION_VOIDED"])


def test_the_clinical_refusals_over_ncpdp_are_denied_ec_with_their_reason(world):
    """CLINICAL_RULES.md's two refusals end to end: a critical warning without an
    acknowledgement, then the course on hold — each a Denied EC naming its code."""
    patient = ready_patient(world, ADULT_MALE)
    prescriber = world.api.as_(world.prescriber_token).at(NOW)
    course = start_course(world, patient)
    lab_id(world, patient, "751-8", 2.1, "10*3/uL")
    platelets = lab_id(world, patient, "777-3", 25, "10*3/uL")
    ack = {"rule": "R-CBC-2", "reason": "Reviewed with the patient."}
    auth = authorize(world, patient, quantity=21, acknowledgements=[ack]).json
    assert auth["decision"] == "approved", auth
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    request = m.rems_request(auth["authorization_number"], patient["rems_patient_id"], quantity=21)

    code, note = _denied(m.send(pharmacy, request))
    assert (code, _codes(note)) == ("EC", ["CLINICAL_ALERT_UNACKNOWLEDGED"])
    assert "CLINICAL_ALERT_UNACKNOWLEDGED (R-ACK-1): The critical warning R-CBC-2" in note

    held = prescriber.post(
        f"/api/v1/courses/{course['id']}/hold", json={"reason_code": "hematologic", "lab_result_ids": [platelets]}
    )
    assert held.status_code == 200, held.json
    again = m.rems_request(auth["authorization_number"], patient["rems_patient_id"], quantity=21)
    code, note = _denied(m.send(pharmacy, again))
    # R-CYCLE-3 first; the still unacknowledged critical warning is listed too (every reason).
    assert (code, _codes(note)) == ("EC", ["TREATMENT_ON_HOLD", "CLINICAL_ALERT_UNACKNOWLEDGED"])
    assert "TREATMENT_ON_HOLD (R-CYCLE-3): The prescriber put on hold the treatment course" in note
    assert "(reason: hematologic)" in note


def test_patient_codes_come_first(world):
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    patient, auth = approved_authorization(world, ADULT_FRP)
    rems_id, number = patient["rems_patient_id"], auth["authorization_number"]
    # Another patient's REMS ID without the attestations: EM (patient) before EO (pharmacy).
    code, note = _denied(m.send(pharmacy, m.rems_request(number, "RP-AAAAA-BBBBB", attest=False)))
    assert code == "EM"
    assert _codes(note) == ["COUNSELING_INCOMPLETE", "AUTHORIZATION_PATIENT_MISMATCH"]
    # The patient discontinued: PATIENT_NOT_ELIGIBLE is EZ, ahead of every other code.
    prescriber = world.api.as_(world.prescriber_token).at(NOW)
    r = prescriber.post(f"/api/v1/patients/{patient['id']}/discontinue", json={"reason": "therapy ended"})
    assert r.status_code == 200, r.json
    code, note = _denied(m.send(pharmacy, m.rems_request(number, rems_id, attest=False)))
    assert code == "EZ", note
    assert "PATIENT_NOT_ELIGIBLE" in _codes(note) and "COUNSELING_INCOMPLETE" in _codes(note)


def test_another_drug_is_denied_er_and_not_recorded(world):
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    patient, auth = approved_authorization(world, ADULT_MALE)
    before = audit_count(world.runtime)
    r = m.send(pharmacy, m.rems_request(auth["authorization_number"], patient["rems_patient_id"], ndc="00069015001"))
    code, note = _denied(r)
    assert code == "ER" and "not a product" in note
    assert audit_count(world.runtime) == before


def test_the_mcode_prototype_request_is_a_well_formed_denied_eo(world):
    """Lowercased tags, version attributes 2024011, no attestation block."""
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    patient, auth = approved_authorization(world, ADULT_MALE)
    text = m.mcode_style_request(auth["authorization_number"], patient["rems_patient_id"])
    assert "<remsrequest>" in text and "2024011" in text and "attestation" not in text.lower()
    r = m.send(pharmacy, text)
    code, note = _denied(r)  # parsed in proper case: the reply is well formed and proper case
    assert (code, _codes(note)) == ("EO", ["COUNSELING_INCOMPLETE"])
    root = m.reply(r)
    assert root.tag == "Message" and root.get("TransactionVersion") == "2024011"
    assert root.get("DatatypesVersion") == "2024011"
    assert m.at(root, "Header/RelatesToMessageID") == "MSG-2"
