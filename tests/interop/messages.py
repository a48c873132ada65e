"""Builders of the standard fronts' messages for tests/interop (NCPDP SCRIPT XML, FHIR
Parameters, CDS Hooks requests), in the shapes INTEROP.md documents."""

from __future__ import annotations

import uuid
from typing import Any

from lxml import etree

NDC_10MG = "59572041028"
RXNORM_10MG = "602910"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PATIENT_SYSTEM = "urn:lenalidomide-rems:patient-id"
VERSIONS = (
    'DatatypesVersion="20170715" TransportVersion="20170715" TransactionDomain="SCRIPT" '
    'TransactionVersion="20170715" StructuresVersion="20170715" ECLVersion="20170715"'
)


def message(body: str, message_id: str = "MSG-1", versions: str = VERSIONS) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Message {versions}>'
        f'<Header><To Qualifier="ZZZ">LENALIDOMIDE-REMS</To><From Qualifier="P">1234567</From>'
        f"<MessageID>{message_id}</MessageID><SentTime>2026-06-15T12:00:00Z</SentTime></Header>"
        f"<Body>{body}</Body></Message>"
    )


def parties(rems_patient_id: str, ncpdp_id: str = "1234567", npi: str = "1234567893") -> str:
    return (
        f"<Patient><HumanPatient><Identification><REMSPatientID>{rems_patient_id}</REMSPatientID>"
        f"</Identification></HumanPatient></Patient>"
        f"<Pharmacy><Identification><NCPDPID>{ncpdp_id}</NCPDPID></Identification></Pharmacy>"
        f"<Prescriber><NonVeterinarian><Identification><NPI>{npi}</NPI></Identification></NonVeterinarian>"
        f"</Prescriber>"
    )


def drug(ndc: str = NDC_10MG, quantity: int = 28, days: int = 28) -> str:
    return (
        f"<MedicationPrescribed><DrugCoded><ProductCode><Code>{ndc}</Code><Qualifier>ND</Qualifier></ProductCode>"
        f"</DrugCoded><Quantity><Value>{quantity}</Value></Quantity><DaysSupply>{days}</DaysSupply>"
        f"</MedicationPrescribed>"
    )


def initiation(rems_patient_id: str, **kw: Any) -> str:
    return message(f"<REMSInitiationRequest>{parties(rems_patient_id, **kw)}{drug()}</REMSInitiationRequest>")


def rems_request(
    case_id: str,
    rems_patient_id: str,
    attest: bool = True,
    ndc: str = NDC_10MG,
    quantity: int = 28,
    days: int = 28,
    message_id: str | None = None,
    **kw: Any,
) -> str:
    """A REMSRequest; each call has a MessageID of its own unless ``message_id`` is given."""
    attestation = (
        "<REMSAttestation><MedicationGuideProvided>Y</MedicationGuideProvided>"
        "<CounselingChecklistCompleted>Y</CounselingChecklistCompleted></REMSAttestation>"
        if attest
        else ""
    )
    return message(
        f"<REMSRequest><Request><SolicitedModel><REMSCaseID>{case_id}</REMSCaseID>{attestation}</SolicitedModel>"
        f"</Request>{parties(rems_patient_id, **kw)}{drug(ndc, quantity, days)}</REMSRequest>",
        message_id or f"MSG-{uuid.uuid4().hex[:12]}",
    )


def rx_fill(confirmation: str, status: str = "Dispensed", ncpdp_id: str = "1234567") -> str:
    return message(
        f"<RxFill><FillStatus><{status}/></FillStatus>"
        f"<Pharmacy><Identification><NCPDPID>{ncpdp_id}</NCPDPID></Identification></Pharmacy>"
        f"<MedicationDispensed><REMSAuthorizationNumber>{confirmation}</REMSAuthorizationNumber>"
        f"<DrugCoded><ProductCode><Code>{NDC_10MG}</Code><Qualifier>ND</Qualifier></ProductCode></DrugCoded>"
        f"</MedicationDispensed></RxFill>",
        "MSG-3",
    )


def mcode_style_request(case_id: str, rems_patient_id: str, ncpdp_id: str = "1234567") -> str:
    """A REMSRequest built the way the mcode prototype's pharmacy builds it: every tag in lower
    case, SCRIPT version attributes 2024011, no attestation block."""
    versions = (
        'datatypesversion="2024011" transportversion="2024011" transactiondomain="SCRIPT" '
        'transactionversion="2024011" structuresversion="2024011" eclversion="2024011"'
    )
    text = rems_request(case_id, rems_patient_id, attest=False, ncpdp_id=ncpdp_id, message_id="MSG-2")
    text = text.replace(VERSIONS, versions)
    root = etree.fromstring(text.split("\n", 1)[1].encode())
    for element in root.iter():
        element.tag = element.tag.lower()
    return etree.tostring(root, encoding="unicode")


def send(api: Any, text: str | bytes, content_type: str = "application/xml") -> Any:
    data = text.encode() if isinstance(text, str) else text
    return api.request("POST", "/ncpdp/script", data=data, headers={"Content-Type": content_type})


def reply(response: Any) -> etree._Element:
    """The reply's root, parsed (and so proven well formed)."""
    return etree.fromstring(response.data)


def at(root: etree._Element, steps: str) -> str | None:
    found = root.find(steps)
    return None if found is None else found.text


def patient_resource(rems_patient_id: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "identifier": [{"system": PATIENT_SYSTEM, "value": rems_patient_id}]}


def etasu(rems_patient_id: str | None = None, case_number: str | None = None, code: str = RXNORM_10MG) -> dict:
    parameters: list[dict[str, Any]] = []
    if rems_patient_id:
        parameters.append({"name": "patient", "resource": patient_resource(rems_patient_id)})
    parameters.append(
        {
            "name": "medication",
            "resource": {"resourceType": "Medication", "code": {"coding": [{"system": RXNORM, "code": code}]}},
        }
    )
    if case_number:
        parameters.append({"name": "case_number", "valueString": case_number})
    return {"resourceType": "Parameters", "parameter": parameters}


def hook(service_hook: str, rems_patient_id: str | None, npi: str, code: str = RXNORM_10MG) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "p1"}
    if rems_patient_id:
        patient = patient_resource(rems_patient_id)
    request: dict[str, Any] = {
        "hook": service_hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/pr1", "patientId": "p1"},
        "prefetch": {
            "patient": patient,
            "practitioner": {
                "resourceType": "Practitioner",
                "id": "pr1",
                "identifier": [{"system": NPI_SYSTEM, "value": npi}],
            },
        },
    }
    if service_hook != "patient-view":
        request["context"]["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {
                    "resource": {
                        "resourceType": "MedicationRequest",
                        "status": "draft",
                        "intent": "order",
                        "subject": {"reference": "Patient/p1"},
                        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
                    }
                }
            ],
        }
    return request


def fhir_post(api: Any, body: Any) -> Any:
    import json

    return api.request(
        "POST",
        "/fhir/GuidanceResponse/$rems-etasu",
        data=json.dumps(body),
        headers={"Content-Type": "application/fhir+json"},
    )
