"""NCPDP SCRIPT beyond the scenario: the case lookup's closed answers, the fill statuses,
the hand-over window, and the reply header."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import ADULT_MALE, NOW, approved_authorization, audit_count, enrolled
from tests.interop import messages as m

CLOSED = "Body/REMSInitiationResponse/Response/ResponseStatus/Closed"


def _closed(response):
    assert response.status_code == 200, response.data
    closed = m.reply(response).find(CLOSED)
    assert closed is not None, response.data
    return closed.findtext("ReasonCode"), closed.findtext("REMSNote")


def test_initiation_is_closed_with_a_reason_and_recorded_as_a_read(world):
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    # An unknown patient: EM.
    code, note = _closed(m.send(pharmacy, m.initiation("RP-AAAAA-BBBBB")))
    assert code == "EM" and "RP-AAAAA-BBBBB" in note
    # An enrolled patient without an open authorization: EC, AUTHORIZATION_NOT_FOUND.
    patient = enrolled(world, ADULT_MALE)
    code, note = _closed(m.send(pharmacy, m.initiation(patient["rems_patient_id"])))
    assert code == "EC" and note.startswith("AUTHORIZATION_NOT_FOUND (R-AUTH-4): ")
    # The prescription's prescriber is not the patient's: EM, and every reason listed.
    code, note = _closed(m.send(pharmacy, m.initiation(patient["rems_patient_id"], npi=world.other_prescriber.npi)))
    assert code == "EM"
    assert [part.split(" (")[0] for part in note.split("; ")] == [
        "PATIENT_PRESCRIBER_MISMATCH",
        "AUTHORIZATION_NOT_FOUND",
    ]
    reads = world.api.as_(world.auditor).get("/api/v1/audit/events?action=audit.read&include_reads=true").json
    ncpdp_reads = [i for i in reads["items"] if i["details"].get("operation") == "ncpdp.rems-initiation"]
    assert len(ncpdp_reads) == 3 and all(i["details"]["channel"] == "ncpdp" for i in ncpdp_reads)


def test_initiation_for_another_drug_is_closed_er(world):
    patient, _auth = approved_authorization(world, ADULT_MALE)
    before = audit_count(world.runtime)
    text = m.initiation(patient["rems_patient_id"]).replace(m.NDC_10MG, "00069015001")
    code, _note = _closed(m.send(world.api.as_(world.pharmacist_token).at(NOW), text))
    assert code == "ER"
    assert audit_count(world.runtime) == before


def _confirmed(world, at=NOW):
    patient, auth = approved_authorization(world, ADULT_MALE)
    r = m.send(
        world.api.as_(world.pharmacist_token).at(at),
        m.rems_request(auth["authorization_number"], patient["rems_patient_id"]),
    )
    approved = m.reply(r).find("Body/REMSResponse/Response/ResponseStatus/Approved")
    assert approved is not None, r.data
    return auth["authorization_number"], approved.findtext("REMSAuthorizationNumber")


def _error(response, status):
    assert response.status_code == status, response.data
    return m.at(m.reply(response), "Body/Error/Description")


def test_not_dispensed_and_transferred_reverse_and_free_the_authorization(world):
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    number, confirmation = _confirmed(world)
    r = m.send(pharmacy, m.rx_fill(confirmation, "NotDispensed"))
    assert m.at(m.reply(r), "Body/Status/Code") == "000"
    assert pharmacy.get(f"/api/v1/dispenses/{confirmation}").json["status"] == "reversed"
    assert world.api.as_(world.pharmacist_token).at(NOW).get(f"/api/v1/authorizations/{number}").json["status"] == (
        "issued"
    )
    # A second fill message on the same confirmation: 409, the state named.
    assert "reversed" in _error(m.send(pharmacy, m.rx_fill(confirmation, "Transferred")), 409)
    events = world.api.as_(world.auditor).get("/api/v1/audit/events?action=dispense.reversed").json["items"]
    assert events[0]["details"]["channel"] == "ncpdp"


def test_partial_fills_late_hand_overs_and_unknown_confirmations_are_errors(world):
    pharmacy = world.api.as_(world.pharmacist_token)
    _number, confirmation = _confirmed(world)
    before = audit_count(world.runtime)
    assert "whole fills" in _error(m.send(pharmacy.at(NOW), m.rx_fill(confirmation, "PartiallyDispensed")), 422)
    late = NOW + timedelta(hours=25)
    assert "CONFIRMATION_EXPIRED" in _error(m.send(pharmacy.at(late), m.rx_fill(confirmation)), 409)
    _error(m.send(pharmacy.at(NOW), m.rx_fill("RC-00000-00000-00000")), 404)
    _error(
        m.send(world.api.as_(world.other_pharmacist_token).at(NOW), m.rx_fill(confirmation, ncpdp_id="7654321")), 404
    )
    assert audit_count(world.runtime) == before


def test_missing_and_invalid_elements_are_named(world):
    patient, auth = approved_authorization(world, ADULT_MALE)
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    number, rems_id = auth["authorization_number"], patient["rems_patient_id"]
    before = audit_count(world.runtime)
    cases = {
        "Request/SolicitedModel/REMSCaseID": m.rems_request(number, rems_id).replace(
            f"<REMSCaseID>{number}</REMSCaseID>", ""
        ),
        "MedicationPrescribed/DaysSupply": m.rems_request(number, rems_id, days=0),
        "MedicationPrescribed/Quantity/Value": m.rems_request(number, rems_id).replace(
            "<Value>28</Value>", "<Value>many</Value>"
        ),
        "MedicationGuideProvided must be Y or N": m.rems_request(number, rems_id).replace(
            "<MedicationGuideProvided>Y", "<MedicationGuideProvided>YES"
        ),
        "Header/MessageID": m.rems_request(number, rems_id, message_id="MSG-2").replace(
            "<MessageID>MSG-2</MessageID>", ""
        ),
        "Pharmacy/Identification/NCPDPID": m.rems_request(number, rems_id).replace("<NCPDPID>1234567</NCPDPID>", ""),
    }
    for named, text in cases.items():
        assert named in _error(m.send(pharmacy, text), 400), named
    assert audit_count(world.runtime) == before


def test_a_retransmitted_request_is_answered_with_the_first_decision(world):
    """The MessageID is the REMSRequest's idempotency key: one decision, the same answer."""
    patient, auth = approved_authorization(world, ADULT_MALE)
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    text = m.rems_request(auth["authorization_number"], patient["rems_patient_id"], message_id="RETRY-1")
    first = m.reply(m.send(pharmacy, text)).find("Body/REMSResponse/Response/ResponseStatus/Approved")
    count = audit_count(world.runtime)
    again = m.reply(m.send(pharmacy.at(NOW + timedelta(minutes=1)), text))
    repeated = again.find("Body/REMSResponse/Response/ResponseStatus/Approved")
    assert repeated is not None, etree_text(again)
    for steps in ("REMSCaseID", "REMSAuthorizationNumber", "AuthorizationPeriod/ExpirationDate/DateTime"):
        assert repeated.findtext(steps) == first.findtext(steps)
    assert audit_count(world.runtime) == count
    # The same MessageID on another message: an Error, nothing decided.
    other = m.rems_request(auth["authorization_number"], patient["rems_patient_id"], quantity=21, message_id="RETRY-1")
    assert "different request" in _error(m.send(pharmacy, other), 422)
    assert audit_count(world.runtime) == count


def test_a_retransmitted_denial_keeps_its_code(world):
    patient, auth = approved_authorization(world, ADULT_MALE)
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    admin = world.api.as_(world.admin).at(NOW)
    assert admin.post(f"/api/v1/pharmacies/{world.pharmacy.id}/suspend", json={"reason": "audit"}).status_code == 200
    text = m.rems_request(auth["authorization_number"], patient["rems_patient_id"], message_id="RETRY-2")
    codes = []
    for _ in range(2):
        denied = m.reply(m.send(pharmacy, text)).find("Body/REMSResponse/Response/ResponseStatus/Denied")
        codes.append((denied.findtext("DeniedReasonCode"), denied.findtext("REMSNote")))
    assert codes[0] == codes[1] and codes[0][0] == "EY"


def etree_text(root) -> str:
    from lxml import etree

    return etree.tostring(root, encoding="unicode")
