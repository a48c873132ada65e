"""Issue 15 over the standard fronts: the clinical warnings of a Decision in NCPDP ``REMSNote``
(Approved and Denied), in the CDS Hooks card detail and in ``$rems-etasu``'s notes; the two
clinical refusals mapped end to end (a course on hold → Denied ``EC`` naming
``TREATMENT_ON_HOLD``; an unacknowledged critical warning → Denied ``EC`` naming
``CLINICAL_ALERT_UNACKNOWLEDGED``); R-ACK-1 acknowledgements sent over NCPDP."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from rems_service.db.models import AuditEntry
from rems_service.interop.ncpdp_codes import WARNINGS_MARK
from rems_service.services import decisions
from tests.api.test_clinical import lab_id, start_course
from tests.helpers import ADULT_MALE, NOW, audit_count, authorize, ready_patient
from tests.interop import messages as m

HOUR = timedelta(hours=1)
ACK = {"rule": "R-CBC-2", "reason": "Platelets reviewed with the prescriber; transfusion planned."}


def _status(response):
    assert response.status_code == 200, response.data
    status = m.reply(response).find("Body/REMSResponse/Response/ResponseStatus")
    assert status is not None and len(status) == 1, response.data
    return status[0]


def _split(note: str) -> tuple[list[str], list[str]]:
    """(reason codes, warnings) of a REMSNote (INTEROP.md: reasons `` | WARNINGS: `` warnings)."""
    if note.startswith("WARNINGS: "):
        reasons, warnings = "", note.removeprefix("WARNINGS: ")
    else:
        reasons, _, warnings = note.partition(WARNINGS_MARK)
    codes = [part.split(" (", 1)[0] for part in reasons.split("; ")] if reasons else []
    return codes, warnings.split("; ") if warnings else []


def _course_patient(world, platelets=150.0, ack=None):
    """A patient on a 25 mg combination course with a CBC, and its approved authorization."""
    patient = ready_patient(world, ADULT_MALE)
    course = start_course(world, patient)
    lab_id(world, patient, "751-8", 2.1, "10*3/uL")
    platelet_lab = lab_id(world, patient, "777-3", platelets, "10*3/uL")
    auth = authorize(world, patient, quantity=21, **({"acknowledgements": [ack]} if ack else {}))
    assert auth.json["decision"] == "approved", auth.json
    return patient, course, auth.json, platelet_lab


def _newest_dispense_entry(world):
    with world.runtime.session() as s:
        query = select(AuditEntry).where(AuditEntry.action == "dispense.decided").order_by(AuditEntry.seq.desc())
        entry = s.exec(query).first()
    assert entry is not None
    return entry


def _heads(warnings: list[str]) -> list[str]:
    return [w.split(":", 1)[0] for w in warnings]


def test_an_approval_over_ncpdp_carries_the_decisions_warnings_in_remsnote(world):
    patient, _course, auth, _lab = _course_patient(world)
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW + HOUR)
    text = m.rems_request(auth["authorization_number"], patient["rems_patient_id"], quantity=21)
    approved = _status(m.send(pharmacy, text))
    assert approved.tag == "Approved"
    # The note follows the period (our reading) and holds warnings only.
    assert [c.tag for c in approved] == ["REMSCaseID", "REMSAuthorizationNumber", "AuthorizationPeriod", "REMSNote"]
    codes, warnings = _split(approved.findtext("REMSNote"))
    assert codes == []
    # Exactly the recorded decision's warnings, in its order, each with severity, code and rule.
    entry = _newest_dispense_entry(world)
    assert entry.details["channel"] == "ncpdp" and entry.outcome == "approved"
    assert _heads(warnings) == [f"{w['severity']} {w['code']} ({w['rule']})" for w in entry.details["warnings"]]
    assert any(w.startswith("info CYCLE_POSITION (R-CYCLE-1): Cycle 1, day 4 of 28") for w in warnings), warnings


def test_a_patient_without_a_course_gets_no_warnings(world):
    patient = ready_patient(world, ADULT_MALE)
    auth = authorize(world, patient).json
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    approved = _status(m.send(pharmacy, m.rems_request(auth["authorization_number"], patient["rems_patient_id"])))
    assert approved.tag == "Approved" and approved.find("REMSNote") is None
    denied = _status(m.send(pharmacy, m.rems_request(auth["authorization_number"], patient["rems_patient_id"])))
    assert denied.tag == "Denied" and WARNINGS_MARK not in denied.findtext("REMSNote")


def test_a_course_on_hold_is_denied_ec_naming_treatment_on_hold_with_the_warnings(world):
    patient, course, auth, platelet_lab = _course_patient(world)
    held = (
        world.api.as_(world.prescriber_token)
        .at(NOW + HOUR)
        .post(
            f"/api/v1/courses/{course['id']}/hold",
            json={"reason_code": "hematologic", "lab_result_ids": [platelet_lab]},
        )
    )
    assert held.status_code == 200, held.json
    before = audit_count(world.runtime)
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW + 2 * HOUR)
    text = m.rems_request(auth["authorization_number"], patient["rems_patient_id"], quantity=21)
    denied = _status(m.send(pharmacy, text))
    assert denied.tag == "Denied"
    assert denied.findtext("DeniedReasonCode") == "EC"  # INTEROP.md: TREATMENT_ON_HOLD is a case problem
    note = denied.findtext("REMSNote")
    codes, warnings = _split(note)
    assert codes == ["TREATMENT_ON_HOLD"]
    assert "TREATMENT_ON_HOLD (R-CYCLE-3): The prescriber put on hold the treatment course" in note
    assert "hematologic" in note.partition(WARNINGS_MARK)[0]
    entry = _newest_dispense_entry(world)
    assert (entry.details["channel"], entry.outcome, entry.reasons[0]["code"]) == (
        "ncpdp",
        "denied",
        "TREATMENT_ON_HOLD",
    )
    assert _heads(warnings) == [f"{w['severity']} {w['code']} ({w['rule']})" for w in entry.details["warnings"]]
    assert audit_count(world.runtime) == before + 1
    assert decisions.replay(world.runtime.uow(), world.runtime.program, entry.seq).matches


def test_an_unacknowledged_critical_warning_is_denied_ec_then_acknowledged_over_ncpdp(world):
    patient, _course, auth, _lab = _course_patient(world, platelets=24.321, ack=ACK)
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW + HOUR)
    number, rems_id = auth["authorization_number"], patient["rems_patient_id"]

    denied = _status(m.send(pharmacy, m.rems_request(number, rems_id, quantity=21)))
    assert denied.tag == "Denied" and denied.findtext("DeniedReasonCode") == "EC"
    note = denied.findtext("REMSNote")
    codes, warnings = _split(note)
    assert codes == ["CLINICAL_ALERT_UNACKNOWLEDGED"]
    assert "The critical warning R-CBC-2 (PLATELETS_BELOW_HOLD_THRESHOLD) has not been acknowledged" in note
    (cbc2,) = [w for w in warnings if "(R-CBC-2)" in w]
    # Severity, code, rule, message and the evidence exactly as the Decision body carries it.
    assert cbc2.startswith("critical PLATELETS_BELOW_HOLD_THRESHOLD (R-CBC-2): The latest platelet count is below")
    (evidence,) = next(w for w in auth["warnings"] if w["rule"] == "R-CBC-2")["evidence"]  # the API's body
    assert f"Evidence: LOINC 777-3 24.321 10*3/uL collected {evidence['collected_at']}." in cbc2, cbc2

    # The same request with the pharmacist's acknowledgement (our reading of SCRIPT) goes ahead.
    acknowledged = m.rems_request(number, rems_id, quantity=21).replace(
        "</REMSAttestation>",
        "</REMSAttestation><REMSAcknowledgement><RuleID>R-CBC-2</RuleID>"
        "<Reason>Prescriber confirmed: transfusion given, continue.</Reason>"
        "<PrescriberContactedDateTime>2026-06-15T09:00:00Z</PrescriberContactedDateTime></REMSAcknowledgement>",
    )
    approved = _status(m.send(pharmacy, acknowledged))
    assert approved.tag == "Approved", m.reply(m.send(pharmacy, acknowledged))
    assert any(
        w.startswith("critical PLATELETS_BELOW_HOLD_THRESHOLD") for w in _split(approved.findtext("REMSNote"))[1]
    )
    entry = _newest_dispense_entry(world)
    (recorded,) = entry.details["acknowledgements"]
    assert recorded["rule"] == "R-CBC-2" and recorded["by_role"] == "pharmacist"
    assert recorded["reason"] == "Prescriber confirmed: transfusion given, continue."
    assert decisions.replay(world.runtime.uow(), world.runtime.program, entry.seq).matches


def test_a_malformed_acknowledgement_is_an_error_naming_the_element(world):
    patient, _course, auth, _lab = _course_patient(world, platelets=24.321, ack=ACK)
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW + HOUR)
    before = audit_count(world.runtime)
    for inner, wanted in (
        ("<RuleID>R-NOPE-1</RuleID><Reason>x</Reason>", "RuleID"),
        ("<RuleID>R-CBC-2</RuleID>", "Reason"),
        ("<RuleID>R-CBC-2</RuleID><Reason>x</Reason><Colour>red</Colour>", "Colour"),
        (
            "<RuleID>R-CBC-2</RuleID><Reason>x</Reason><PrescriberContactedDateTime>soon</PrescriberContactedDateTime>",
            "PrescriberContactedDateTime",
        ),
    ):
        text = m.rems_request(auth["authorization_number"], patient["rems_patient_id"], quantity=21).replace(
            "</REMSAttestation>", f"</REMSAttestation><REMSAcknowledgement>{inner}</REMSAcknowledgement>"
        )
        r = m.send(pharmacy, text)
        assert r.status_code == 400, r.data
        description = m.at(m.reply(r), "Body/Error/Description")
        assert "REMSAcknowledgement[1]" in description and wanted in description, description
    assert audit_count(world.runtime) == before


def test_cds_hooks_card_detail_lists_the_clinical_warnings_and_the_hold(world):
    patient, course, _auth, platelet_lab = _course_patient(world, platelets=24.321, ack=ACK)
    prescriber = world.api.as_(world.prescriber_token).at(NOW + HOUR)
    hook = m.hook("order-sign", patient["rems_patient_id"], "1234567893")
    r = prescriber.post("/cds-services/lenalidomide-rems-order-sign", json=hook)
    assert r.status_code == 200, r.json
    (card,) = r.json["cards"]
    assert card["indicator"] == "info" and card["summary"] == "Lenalidomide REMS requirements met"
    detail = card["detail"]
    assert "**Clinical warnings**" in detail
    assert "- **critical** R-CBC-2 `PLATELETS_BELOW_HOLD_THRESHOLD`: The latest platelet count" in detail
    assert "Evidence: `LOINC 777-3 24.321 10*3/uL collected " in detail
    assert "- **info** R-CYCLE-1 `CYCLE_POSITION`" in detail
    # R-ACK-1 tells the prescriber the next authorization needs an acknowledgement.
    assert "**CLINICAL_ALERT_UNACKNOWLEDGED** (R-ACK-1)" in detail

    held = prescriber.post(
        f"/api/v1/courses/{course['id']}/hold", json={"reason_code": "hematologic", "lab_result_ids": [platelet_lab]}
    )
    assert held.status_code == 200, held.json
    (card,) = prescriber.post("/cds-services/lenalidomide-rems-order-sign", json=hook).json["cards"]
    assert "**TREATMENT_ON_HOLD** (R-CYCLE-3): The prescriber put on hold" in card["detail"]
    # The audit read names the warnings by rule and severity, never a lab value.
    entries = world.api.as_(world.auditor).get("/api/v1/audit/events?action=audit.read&include_reads=true").json
    read = next(i for i in entries["items"] if i["details"].get("operation") == "cds-hooks.order-sign")
    assert {"code": "PLATELETS_BELOW_HOLD_THRESHOLD", "rule": "R-CBC-2", "severity": "critical"} in read["details"][
        "warnings"
    ]
    assert "24.321" not in str(read["details"])


def test_a_patient_without_a_course_has_no_clinical_section(world):
    patient = ready_patient(world, ADULT_MALE)
    hook = m.hook("order-sign", patient["rems_patient_id"], "1234567893")
    (card,) = (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post("/cds-services/lenalidomide-rems-order-sign", json=hook)
        .json["cards"]
    )
    assert "Clinical warnings" not in card["detail"]
    r = m.fhir_post(world.api.as_(world.prescriber_token).at(NOW), m.etasu(patient["rems_patient_id"]))
    assert "note" not in r.json["parameter"][0]["resource"]


def test_rems_etasu_notes_the_clinical_warnings_beside_the_requirements(world):
    patient, _course, auth, _lab = _course_patient(world, platelets=24.321, ack=ACK)
    r = m.fhir_post(
        world.api.as_(world.pharmacist_token).at(NOW + HOUR),
        m.etasu(patient["rems_patient_id"], auth["authorization_number"]),
    )
    assert r.status_code == 200, r.json
    guidance = r.json["parameter"][0]["resource"]
    assert guidance["status"] == "success"  # advice, not an ETASU: the requirements are met
    notes = [n["text"] for n in guidance["note"]]
    assert any(n.startswith("R-ACK-1 CLINICAL_ALERT_UNACKNOWLEDGED") and "pharmacist" in n for n in notes), notes
    assert any(
        n.startswith("Clinical warning: critical PLATELETS_BELOW_HOLD_THRESHOLD (R-CBC-2)") and "LOINC 777-3" in n
        for n in notes
    ), notes


def test_initiation_is_closed_ec_while_the_course_is_on_hold(world):
    patient, course, auth, platelet_lab = _course_patient(world)

    def status(at):
        r = m.send(world.api.as_(world.pharmacist_token).at(at), m.initiation(patient["rems_patient_id"]))
        assert r.status_code == 200, r.data
        (found,) = m.reply(r).find("Body/REMSInitiationResponse/Response/ResponseStatus")
        return found

    assert status(NOW + HOUR).findtext("REMSCaseID") == auth["authorization_number"]
    prescriber = world.api.as_(world.prescriber_token)
    held = prescriber.at(NOW + HOUR).post(
        f"/api/v1/courses/{course['id']}/hold", json={"reason_code": "hematologic", "lab_result_ids": [platelet_lab]}
    )
    assert held.status_code == 200, held.json
    closed = status(NOW + 2 * HOUR)
    assert closed.tag == "Closed" and closed.findtext("ReasonCode") == "EC"
    assert closed.findtext("REMSNote").startswith("TREATMENT_ON_HOLD (R-CYCLE-3): The prescriber put on hold")
    resumed = prescriber.at(NOW + 3 * HOUR).post(
        f"/api/v1/courses/{course['id']}/resume", json={"dose_mg": 20, "reason_code": "hematologic"}
    )
    assert resumed.status_code == 200, resumed.json
    reopened = status(NOW + 4 * HOUR)
    assert reopened.tag == "Open" and reopened.findtext("REMSCaseID") == auth["authorization_number"]
