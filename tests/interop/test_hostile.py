"""Must show 3: hostile input gets the documented error, records nothing, and leaves the
process healthy."""

from __future__ import annotations

import pytest

from tests.helpers import ADULT_MALE, NOW, approved_authorization, audit_count
from tests.interop import messages as m

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Message><Header><MessageID>&lol9;</MessageID></Header><Body><REMSRequest/></Body></Message>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Message><Header><MessageID>&xxe;</MessageID></Header><Body><REMSRequest/></Body></Message>"""


def _error(response, status: int) -> str:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/xml"
    root = m.reply(response)
    assert m.at(root, "Body/Error/Code") == "900"
    assert m.at(root, "Body/Error/DescriptionCode")
    return m.at(root, "Body/Error/Description") or ""


def _healthy(world) -> None:
    assert world.api.get("/healthz").status_code == 200


@pytest.fixture
def case(world):
    patient, auth = approved_authorization(world, ADULT_MALE)
    return patient["rems_patient_id"], auth["authorization_number"]


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        BILLION_LAUGHS.decode().replace('"1.0"?', '"1.0" encoding="UTF-16"?').encode("utf-16"),
    ],
    ids=["billion-laughs", "external-entity", "billion-laughs-utf16"],
)
def test_entities_and_dtds_are_refused(world, case, body):
    before = audit_count(world.runtime)
    r = m.send(world.api.as_(world.pharmacist_token).at(NOW), body)
    description = _error(r, 400)
    assert "DOCTYPE" in description or "UTF-8" in description
    assert b"root:" not in r.data and b"lollol" not in r.data
    assert audit_count(world.runtime) == before
    _healthy(world)


def test_a_10_mb_body_is_refused_before_parsing(world, case):
    before = audit_count(world.runtime)
    rems_id, number = case
    padding = "<!--" + "x" * (10 * 1024 * 1024) + "-->"
    body = m.rems_request(number, rems_id).replace("<Body>", padding + "<Body>")
    r = m.send(world.api.as_(world.pharmacist_token).at(NOW), body)
    assert "256 KiB" in _error(r, 413)
    assert audit_count(world.runtime) == before
    # FHIR and CDS Hooks refuse it too, in their own formats.
    big = b'{"resourceType": "Parameters", "id": "' + b"x" * (300 * 1024) + b'"}'
    r = world.api.as_(world.prescriber_token).request(
        "POST", "/fhir/GuidanceResponse/$rems-etasu", data=big, headers={"Content-Type": "application/fhir+json"}
    )
    assert r.status_code == 413 and r.json["resourceType"] == "OperationOutcome"
    r = world.api.as_(world.prescriber_token).request(
        "POST", "/cds-services/lenalidomide-rems-order-sign", data=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and "cards" not in r.json
    assert audit_count(world.runtime) == before
    _healthy(world)


def test_wrong_case_and_lowercase_only_messages_are_read_and_answered_in_proper_case(world, case):
    rems_id, number = case
    pharmacy = world.api.as_(world.pharmacist_token).at(NOW)
    wrong_case = (
        m.initiation(rems_id)
        .replace("<Header>", "<hEaDeR>")
        .replace("</Header>", "</hEaDeR>")
        .replace("REMSInitiationRequest", "remsInitiationREQUEST")
        .replace("REMSPatientID", "RemsPatientId")
    )
    root = m.reply(m.send(pharmacy, wrong_case))
    assert m.at(root, "Body/REMSInitiationResponse/Response/ResponseStatus/Open/REMSCaseID") == number
    lower = m.initiation(rems_id)
    lower = (
        lower.split("\n", 1)[0]
        + "\n"
        + "".join(part.lower() if part.startswith("<") else part for part in _tags_and_text(lower.split("\n", 1)[1]))
    )
    r = m.send(pharmacy, lower)
    root = m.reply(r)
    assert root.tag == "Message", r.data
    assert m.at(root, "Body/REMSInitiationResponse/Response/ResponseStatus/Open/REMSCaseID") == number, r.data
    assert m.at(root, "Body/REMSInitiationResponse/Response/ResponseStatus/Open/REMSCaseID") == number
    # A message type no one answers, in any case: the documented Error, nothing decided.
    before = audit_count(world.runtime)
    r = m.send(pharmacy, m.message("<remsfoorequest/>"))
    assert "remsfoorequest" in _error(r, 400)
    assert audit_count(world.runtime) == before
    _healthy(world)


def _tags_and_text(text: str) -> list[str]:
    import re

    return re.split(r"(<[^>]+>)", text)


def test_another_pharmacys_ncpdp_id_is_refused(world, case):
    rems_id, number = case
    before = audit_count(world.runtime)
    r = m.send(world.api.as_(world.pharmacist_token).at(NOW), m.rems_request(number, rems_id, ncpdp_id="7654321"))
    assert "NCPDPID" in _error(r, 403)
    # Nor may the other pharmacy's pharmacist speak for this one.
    r = m.send(world.api.as_(world.other_pharmacist_token).at(NOW), m.rems_request(number, rems_id))
    _error(r, 403)
    assert audit_count(world.runtime) == before
    _healthy(world)


def test_ncpdp_needs_a_pharmacists_token(world, case):
    rems_id, number = case
    before = audit_count(world.runtime)
    _error(m.send(world.api.at(NOW), m.rems_request(number, rems_id)), 401)
    _error(m.send(world.api.as_("nonsense").at(NOW), m.rems_request(number, rems_id)), 401)
    _error(m.send(world.api.as_(world.prescriber_token).at(NOW), m.rems_request(number, rems_id)), 403)
    assert "Content-Type" in _error(
        m.send(world.api.as_(world.pharmacist_token).at(NOW), m.rems_request(number, rems_id), "text/plain"), 415
    )
    assert "well-formed" in _error(m.send(world.api.as_(world.pharmacist_token).at(NOW), "<Message><Body>"), 400)
    assert audit_count(world.runtime) == before


def test_a_parameters_that_is_not_valid_r4_is_refused(world, case):
    rems_id, _number = case
    before = audit_count(world.runtime)
    prescriber = world.api.as_(world.prescriber_token).at(NOW)
    invalid = [
        {"resourceType": "Parameters", "parameter": [{"valueString": "no name"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueCodeableReference": {}}]},
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "patient", "resource": {"resourceType": "Patient", "birthDate": "yesterday"}}],
        },
        {"resourceType": "Patient"},
        ["not", "a", "resource"],
    ]
    for body in invalid:
        r = m.fhir_post(prescriber, body)
        assert r.status_code == 400, (body, r.json)
        assert r.mimetype == "application/fhir+json"
        assert r.json["resourceType"] == "OperationOutcome"
        assert r.json["issue"][0]["severity"] == "error" and r.json["issue"][0]["diagnostics"]
    assert audit_count(world.runtime) == before
    _healthy(world)


def test_a_cds_hooks_request_for_another_prescribers_npi_is_refused(world, case):
    rems_id, _number = case
    before = audit_count(world.runtime)
    r = (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post(
            "/cds-services/lenalidomide-rems-order-sign", json=m.hook("order-sign", rems_id, world.other_prescriber.npi)
        )
    )
    assert r.status_code == 403, r.json
    assert "cards" not in r.json and "NPI" in r.json["message"]
    assert audit_count(world.runtime) == before
    _healthy(world)


def test_malformed_hook_requests_are_400_and_never_say_met(world, case):
    rems_id, _number = case
    prescriber = world.api.as_(world.prescriber_token).at(NOW)
    good = m.hook("order-sign", rems_id, world.prescriber.npi)
    broken = [
        {**good, "hook": "patient-view"},
        {k: v for k, v in good.items() if k != "prefetch"},
        {**good, "context": {**good["context"], "draftOrders": {"resourceType": "Bundle"}}},
        {**good, "prefetch": {**good["prefetch"], "patient": {"resourceType": "Patient", "gender": 3}}},
        {**good, "context": {"patientId": "p1"}},
    ]
    before = audit_count(world.runtime)
    for body in broken:
        r = prescriber.post("/cds-services/lenalidomide-rems-order-sign", json=body)
        assert r.status_code == 400, (body, r.json)
        assert "cards" not in r.json and r.json["message"]
    assert audit_count(world.runtime) == before


def test_errors_raised_before_or_below_the_adapters_keep_each_fronts_format(world, case, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from rems_service.services import interop

    rems_id, number = case
    pharmacist = world.api.as_(world.pharmacist_token)
    headers = {"Content-Type": "application/xml", "X-Rems-Now": "not a time"}
    r = pharmacist.request("POST", "/ncpdp/script", data=m.rems_request(number, rems_id).encode(), headers=headers)
    _error(r, 400)
    r = world.api.as_(world.prescriber_token).request(
        "POST", "/fhir/GuidanceResponse/$rems-etasu", data=b"{}", headers={"X-Rems-Now": "not a time"}
    )
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    before = audit_count(world.runtime)
    monkeypatch.setattr(interop, "caller_ncpdp_id", down)
    r = m.send(pharmacist.at(NOW), m.rems_request(number, rems_id))
    assert "nothing was decided" in _error(r, 503)
    monkeypatch.setattr(interop, "requirements", down)
    r = m.fhir_post(world.api.as_(world.prescriber_token).at(NOW), m.etasu(rems_id))
    assert r.status_code == 503 and r.json["resourceType"] == "OperationOutcome"
    assert audit_count(world.runtime) == before
