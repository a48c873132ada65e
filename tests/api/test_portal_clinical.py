"""The portal and the clinical layer (issue 15 through issue 13's portal), through the test client:
warnings in the prescriber's and pharmacist's decisions with the R-ACK-1 acknowledgement offered
and sent through the same service call; the patient's Treatment section built from the summary
service with its server-rendered charts and the prescriber's course and lab forms; and a disabled
user's session that stops at its next request."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from markupsafe import escape

from rems_service.db.models import AuditEntry
from rems_service.services import decisions, users
from tests.api.test_portal import PASSWORD, Portal
from tests.helpers import ADULT_MALE, NOW, TRAINED, authorize, ready_patient
from workflows.actors import SYSTEM

DAY = timedelta(days=1)
CBC2_REASON = "Platelets reviewed with the patient; transfusion planned."


def local(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M")


def account(runtime: Any, role: str, email: str, **binding: Any) -> Any:
    user, _token = users.create_user(
        runtime.uow(), SYSTEM, TRAINED, name=f"{role} person", role=role, email=email, password=PASSWORD, **binding
    )
    return user


@pytest.fixture
def portal(client) -> Portal:
    return Portal(client)


@pytest.fixture
def prescriber_portal(world, portal) -> Portal:
    account(world.runtime, "prescriber", "doc@example.org", prescriber_id=world.prescriber.id)
    assert portal.sign_in("doc@example.org").status_code == 302
    return portal


def text(r: Any) -> str:
    return r.get_data(as_text=True)


def course_started(portal: Portal, patient: dict[str, Any]) -> str:
    page = f"/prescriber/patients/{patient['id']}"
    r = portal.post(
        f"{page}/courses",
        {
            "course-regimen": "combination",
            "course-start_date": (NOW - 3 * DAY).date().isoformat(),
            "course-dose_mg": "25",
            "course-dose_every_days": "1",
            "course-thromboprophylaxis": "aspirin 81 mg",
        },
        token_from=page,
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("#treatment"), text(r)[:2000]
    return page


def record_lab(portal: Portal, page: str, loinc: str, value: str, unit: str, at: Any = NOW - DAY) -> Any:
    return portal.post(
        f"{page}/labs",
        {"lab-loinc": loinc, "lab-value": value, "lab-unit": unit, "lab-collected_at": local(at)},
        token_from=page,
    )


AUTH_FORM = {
    "auth-days_supply": "28",
    "auth-quantity": "21",
    "auth-strength_mg": "25",
    "auth-counseled_on_risks": "y",
    "auth-contraception_confirmed": "y",
}


def test_the_treatment_section_shows_the_course_labs_and_charts_and_its_forms_act(world, prescriber_portal):
    portal = prescriber_portal
    patient = ready_patient(world, ADULT_MALE)
    page = f"/prescriber/patients/{patient['id']}"
    html = text(portal.get(page))
    assert 'id="treatment"' in html and "No treatment course" in html and ">Start course</button>" in html
    assert ">Hold course</button>" not in html

    course_started(portal, patient)
    assert record_lab(portal, page, "751-8", "2.1", "10*3/uL").status_code == 302
    r = record_lab(portal, page, "777-3", "24321", "/uL")
    assert r.status_code == 302
    flashed = text(portal.get(page))
    assert "Lab result recorded (777-3); critical: R-CBC-2" in flashed
    # The same data the JSON summary endpoint gives, shown on the page.
    summary = world.api.as_(world.prescriber_token).at(NOW).get(f"/api/v1/patients/{patient['id']}/treatment").json
    assert summary["course"]["cycle"]["number"] == 1 and summary["course"]["cycle"]["day"] == 4
    html = text(portal.get(page))
    assert "Combination with dexamethasone" in html and "25 mg daily" in html
    assert "Cycle 1, day 4 (dosing day)" in html and 'id="cycle-calendar-table"' in html
    assert "24.321 ×10³/µL" in html and "below the hold threshold" in html
    assert "platelets below 30 ×10³/µL (R-CBC-2)" in html
    # Charts: rems_service.charts' SVG inline, no script; the advisories with their evidence.
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and 'aria-label="Platelets and ANC"' in html
    assert "<script" not in html and " style=" not in html
    assert "R-CBC-2" in html and "critical" in html
    # No M-protein yet; two results give a response category.
    assert "No response category yet" in html
    assert record_lab(portal, page, "33358-3", "3.0", "g/dL", at=NOW - 2 * DAY).status_code == 302
    assert record_lab(portal, page, "33358-3", "1.2", "g/dL", at=NOW - DAY).status_code == 302
    html = text(portal.get(page))
    category = world.api.as_(world.prescriber_token).at(NOW).get(f"/api/v1/patients/{patient['id']}/treatment")
    trend = category.json["m_protein"]["serum_trend"]
    assert (
        f"Response: <strong>{trend['response_category']}</strong>" in html and "-60 % from the baseline 3 g/dL" in html
    )

    # Course actions through the services: hold, resume at 20 mg, change the dose, stop.
    course_id = summary["course"]["id"]
    base = f"{page}/courses/{course_id}"
    platelets = next(p for p in summary["cbc"]["series"]["platelets"] if p["value"] < 30)["lab_id"]
    assert f'value="{platelets}"' in html  # offered as a lab behind the change
    r = portal.post(
        f"{base}/hold",
        {"hold-reason_code": "hematologic", "hold-reason": "platelets", "hold-lab_result_ids": platelets},
        token_from=page,
    )
    assert r.status_code == 302
    html = text(portal.get(page))
    assert "Treatment course held; the course is on hold at 25 mg." in html
    assert ">Resume course</button>" in html and ">Hold course</button>" not in html
    assert "Hematologic (blood counts): platelets (1 lab result cited)" in html
    # A hold sent again from a page left open changes nothing and says why.
    again = portal.post(f"{base}/hold", {"hold-reason_code": "hematologic"}, token_from=page)
    assert again.status_code == 302 and "Nothing changed:" in text(portal.get(page))
    on_hold = authorize(world, patient, quantity=21)
    assert {r["code"] for r in on_hold.json["reasons"]} >= {"TREATMENT_ON_HOLD"}
    refused = portal.post(f"{base}/resume", {"resume-dose_mg": "200"}, token_from=page)
    assert refused.status_code == 422 and "Enter a dose between 0.5 and 100 mg." in text(refused)
    r = portal.post(f"{base}/resume", {"resume-dose_mg": "20", "resume-reason_code": "hematologic"}, token_from=page)
    assert r.status_code == 302
    r = portal.post(f"{base}/change-dose", {"change-dose-dose_mg": "15"}, token_from=page)
    assert r.status_code == 422 and "Choose the reason." in text(r)  # next to the field, nothing changed
    r = portal.post(
        f"{base}/change-dose",
        {"change-dose-dose_mg": "15", "change-dose-reason_code": "other_toxicity"},
        token_from=page,
    )
    assert r.status_code == 302
    course = world.api.as_(world.prescriber_token).at(NOW).get(f"/api/v1/courses/{course_id}").json
    assert course["status"] == "active" and course["dose_mg"] == 15
    assert next(e for e in course["events"] if e["event"] == "treatment.held")["lab_result_ids"] == [platelets]
    assert [e["event"] for e in course["events"]][-3:] == [
        "treatment.held",
        "treatment.resumed",
        "treatment.dose_changed",
    ]
    html = text(portal.get(page))
    assert "started at 25 mg" in html and "25 mg → 20 mg" in html and "20 mg → 15 mg" in html
    r = portal.post(f"{base}/stop", {"stop-reason_code": "patient_request"}, token_from=page)
    assert r.status_code == 302
    html = text(portal.get(page))
    assert "the course is stopped" in html and ">Start course</button>" in html
    # Another patient's course under this patient's URL is not found (and not acted on).
    other = ready_patient(world, ADULT_MALE)
    assert (
        portal.post(f"/prescriber/patients/{other['id']}/courses/{course_id}/stop", {}, token_from=page).status_code
        == 404
    )


def test_lab_and_course_form_errors_are_next_to_the_field_and_change_nothing(world, prescriber_portal):
    portal = prescriber_portal
    patient = ready_patient(world, ADULT_MALE)
    page = f"/prescriber/patients/{patient['id']}"
    r = record_lab(portal, page, "777-3", "24", "furlongs")
    assert r.status_code == 422 and 'id="lab-unit-error"' in text(r)
    r = record_lab(portal, page, "777-3", "24", "10*3/uL", at=NOW + DAY)
    assert r.status_code == 422 and 'id="lab-collected_at-error"' in text(r)
    r = portal.post(f"{page}/courses", {"course-regimen": "combination", "course-dose_mg": "25"}, token_from=page)
    assert r.status_code == 422 and 'id="course-start_date-error"' in text(r)
    summary = world.api.as_(world.prescriber_token).at(NOW).get(f"/api/v1/patients/{patient['id']}/treatment").json
    assert summary["course"] is None and summary["cbc"]["series"]["platelets"] == []


def test_a_critical_warning_is_shown_and_acknowledged_in_the_prescribers_authorization(world, prescriber_portal):
    portal = prescriber_portal
    patient = ready_patient(world, ADULT_MALE)
    page = course_started(portal, patient)
    assert record_lab(portal, page, "751-8", "2.1", "10*3/uL").status_code == 302
    assert record_lab(portal, page, "777-3", "24321", "/uL").status_code == 302

    denied = portal.post(f"{page}/authorizations", AUTH_FORM, token_from=page)
    html = text(denied)
    assert denied.status_code == 200 and ">Denied</h2>" in html
    assert "CLINICAL_ALERT_UNACKNOWLEDGED" in html and "R-ACK-1" in html
    # Every warning with its rule ID, severity, message and evidence.
    assert "Clinical warnings" in html and "R-CBC-2" in html and "R-CYCLE-1" in html
    assert "Platelets [#/volume] in Blood (777-3): 24.321 10*3/uL" in html
    assert str(escape("Cycle 1, day 4 of 28")) in html
    # The acknowledgement the request accepts, labelled; the prescriber has no contact time to give.
    assert '<label for="ack-R-CBC-2-reason">Reason for going ahead despite R-CBC-2</label>' in html.replace(
        ' class="form-label"', ""
    )
    assert 'name="ack_rules" value="R-CBC-2"' in html and "Prescriber contacted at" not in html
    # The rule's next step names the form's field instead of the API's JSON.
    assert (
        "the prescriber sends “Reason for going ahead despite R-CBC-2” (under “Acknowledge critical warnings”)" in html
    )

    blank = portal.post(f"{page}/authorizations", {**AUTH_FORM, "ack_rules": "R-CBC-2"}, token_from=page)
    assert ">Denied</h2>" in text(blank)  # a blank reason acknowledges nothing
    # The same rendering of the form sent twice shows the first decision again, warnings and all.
    key = re.search(r'name="auth-request_key"[^>]*value="([0-9a-f]{32})"', text(blank)).group(1)
    first, again = (
        text(portal.post(f"{page}/authorizations", {**AUTH_FORM, "auth-request_key": key}, token_from=page))
        for _ in range(2)
    )
    seqs = [re.search(r"audit entry #(\d+)", h).group(1) for h in (first, again)]
    assert seqs[0] == seqs[1] and "R-CBC-2" in again and "Clinical warnings" in again
    assert 'name="ack_rules" value="R-CBC-2"' in again
    approved = portal.post(
        f"{page}/authorizations",
        {**AUTH_FORM, "ack_rules": "R-CBC-2", "ack-R-CBC-2-reason": CBC2_REASON},
        token_from=page,
    )
    html = text(approved)
    assert ">Approved</h2>" in html and "R-CBC-2" in html, html[:3000]
    seq = int(re.search(r"audit entry #(\d+)", html).group(1))
    with world.runtime.session() as s:
        entry = s.get(AuditEntry, seq)
        (ack,) = entry.details["acknowledgements"]
    assert ack["rule"] == "R-CBC-2" and ack["reason"] == CBC2_REASON and ack["by_role"] == "prescriber"
    assert decisions.replay(world.runtime.uow(), world.runtime.program, seq).matches
    assert CBC2_REASON not in text(portal.get(page))  # a new form: the acknowledgement is per request


def test_the_pharmacist_sees_every_warning_and_acknowledges_with_the_prescriber_contact(world, portal):
    patient = ready_patient(world, ADULT_MALE)
    api = world.api.as_(world.prescriber_token).at(NOW)
    course = {"regimen": "combination", "start_date": (NOW - 3 * DAY).date().isoformat(), "dose_mg": 25}
    assert api.post(f"/api/v1/patients/{patient['id']}/courses", json=course).status_code == 201
    lab = {"loinc": "777-3", "value": 24.321, "unit": "10*3/uL", "collected_at": (NOW - DAY).isoformat()}
    assert api.post(f"/api/v1/patients/{patient['id']}/labs", json=lab).status_code == 201
    ack = {"rule": "R-CBC-2", "reason": "reviewed"}
    number = authorize(world, patient, quantity=21, acknowledgements=[ack]).json["authorization_number"]

    account(
        world.runtime, "pharmacist", "pharm@example.org", pharmacy_id=world.pharmacy.id, training_completed_at=TRAINED
    )
    assert portal.sign_in("pharm@example.org").status_code == 302
    check = {
        "authorization_number": number,
        "rems_patient_id": patient["rems_patient_id"],
        "days_supply": "28",
        "quantity": "21",
        "medication_guide_provided": "y",
        "checklist_completed": "y",
    }
    denied = text(portal.post("/pharmacy/check", check, token_from="/pharmacy"))
    assert ">Denied</h2>" in denied and "CLINICAL_ALERT_UNACKNOWLEDGED" in denied
    assert "R-CBC-2" in denied and "24.321 10*3/uL" in denied and "critical" in denied
    assert 'for="ack-R-CBC-2-reason"' in denied and "Reason for going ahead despite R-CBC-2" in denied
    assert 'for="ack-R-CBC-2-prescriber_contacted_at"' in denied and "Prescriber contacted at (R-CBC-2)" in denied

    sent = {**check, "ack_rules": "R-CBC-2", "ack-R-CBC-2-reason": CBC2_REASON}
    future = portal.post(
        "/pharmacy/check", {**sent, "ack-R-CBC-2-prescriber_contacted_at": local(NOW + DAY)}, token_from="/pharmacy"
    )
    assert future.status_code == 422
    assert 'id="ack-R-CBC-2-prescriber_contacted_at-error"' in text(future) and "Cannot be in the future." in text(
        future
    )
    assert CBC2_REASON in text(future)  # the values are kept

    approved = portal.post(
        "/pharmacy/check",
        {**sent, "ack-R-CBC-2-prescriber_contacted_at": local(NOW - timedelta(hours=1))},
        token_from="/pharmacy",
    )
    html = text(approved)
    assert ">Approved</h2>" in html and 'id="confirmation-number"' in html and "R-CBC-2" in html
    seq = int(re.search(r"audit entry #(\d+)", html).group(1))
    with world.runtime.session() as s:
        (recorded,) = s.get(AuditEntry, seq).details["acknowledgements"]
    assert recorded["by_role"] == "pharmacist" and recorded["reason"] == CBC2_REASON
    assert recorded["prescriber_contacted_at"].startswith(local(NOW - timedelta(hours=1)))
    assert decisions.replay(world.runtime.uow(), world.runtime.program, seq).matches


def test_a_disabled_users_portal_session_stops_at_its_next_request(world, portal):
    user = account(
        world.runtime, "pharmacist", "pharm@example.org", pharmacy_id=world.pharmacy.id, training_completed_at=TRAINED
    )
    assert portal.sign_in("pharm@example.org").status_code == 302
    assert portal.get("/pharmacy").status_code == 200
    r = world.api.as_(world.admin).at(NOW).post(f"/api/v1/users/{user.id}/disable", json={})
    assert r.status_code == 200 and r.json["disabled"] is True
    nxt = portal.get("/pharmacy")
    assert nxt.status_code == 302 and nxt.headers["Location"].startswith("/login")
    # Signing in again is refused like a wrong password, and the session stays signed out.
    assert "Email or password is incorrect" in text(portal.sign_in("pharm@example.org"))
    assert portal.get("/pharmacy").status_code == 302
