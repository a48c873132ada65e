"""The clinical layer in the portal, in Chromium (issue 15 "Warnings appear in ... Decisions (portal)"
and "The patient's page ... charts rendered on the server"): the prescriber's Treatment section and
the R-ACK-1 acknowledgement on both decision forms, with the keyboard-visible labels axe-core checks."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from tests.helpers import ADULT_MALE, NOW, authorize, ready_patient

DAY = timedelta(days=1)


def critical_platelets(world):
    """A patient on a 25 mg combination course whose latest platelets (24.321 ×10³/µL) are below
    the hold threshold: R-CBC-2, critical."""
    patient = ready_patient(world, ADULT_MALE)
    api = world.api.as_(world.prescriber_token).at(NOW)
    course = {
        "regimen": "combination",
        "start_date": (NOW - 3 * DAY).date().isoformat(),
        "dose_mg": 25,
        "thromboprophylaxis": "aspirin 81 mg",
    }
    assert api.post(f"/api/v1/patients/{patient['id']}/courses", json=course).status_code == 201
    for loinc, value, unit, days in (
        ("751-8", 2.1, "10*3/uL", 8),
        ("777-3", 180, "10*3/uL", 8),
        ("777-3", 24321, "/uL", 1),
        ("33358-3", 3.0, "g/dL", 8),
        ("33358-3", 12, "g/L", 1),
    ):
        lab = {"loinc": loinc, "value": value, "unit": unit, "collected_at": (NOW - days * DAY).isoformat()}
        assert api.post(f"/api/v1/patients/{patient['id']}/labs", json=lab).status_code == 201
    return patient


def test_prescriber_treatment_section_acknowledgement_and_hold(portal, page, sign_in, assert_accessible):
    patient = critical_platelets(portal.world)
    sign_in(page, "prescriber")
    page.goto(f"/prescriber/patients/{patient['id']}")
    section = page.locator("#treatment-section")
    expect(section.get_by_role("heading", name="Treatment", exact=True)).to_be_visible()
    expect(page.locator("#course-cycle")).to_have_text("Cycle 1, day 4 (dosing day)")
    expect(section.get_by_role("img", name="Platelets and ANC")).to_be_visible()
    expect(section.get_by_role("img", name="Serum M-protein")).to_be_visible()
    expect(page.locator("#m-protein-response")).to_contain_text("-60 % from the baseline 3 g/dL")
    expect(page.locator("#cbc-table")).to_contain_text("below the hold threshold")
    expect(page.locator("#advisories-list")).to_contain_text("R-CBC-2")
    assert_accessible(page)

    page.get_by_label("Days' supply").fill("28")
    page.get_by_label("Quantity").fill("21")
    page.get_by_label("Strength (mg)").select_option("25")
    page.get_by_label("Counseled on risks").check()
    page.get_by_label("Contraception confirmed").check()
    page.get_by_role("button", name="Request authorization").click()
    result = page.locator("#result")
    expect(result.get_by_role("heading", name="Denied")).to_be_visible()
    expect(result.locator(".reason-code")).to_have_text(["CLINICAL_ALERT_UNACKNOWLEDGED"])
    cbc2 = result.locator(".warning", has_text="R-CBC-2")
    expect(cbc2.locator(".warning-severity")).to_have_text("critical")
    expect(cbc2.locator(".warning-evidence")).to_contain_text("24.321 10*3/uL")
    assert_accessible(page)

    page.get_by_label("Reason for going ahead despite R-CBC-2").fill("Platelets reviewed; transfusion planned.")
    page.get_by_role("button", name="Request authorization").click()
    expect(result.get_by_role("heading", name="Approved")).to_be_visible()
    expect(result.locator(".warning", has_text="R-CBC-2")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Hold reason").select_option("hematologic")
    page.get_by_label("Hold details").fill("platelets 24")
    page.get_by_role("form", name="Hold the course").get_by_label("Platelets 24.321 ×10³/µL").check()
    page.get_by_role("button", name="Hold course").click()
    expect(page.get_by_role("status")).to_contain_text("Treatment course held")
    expect(page.locator("#course-status")).to_contain_text("on hold")
    expect(page.locator("#holds-list")).to_contain_text("Hematologic (blood counts): platelets 24")
    page.get_by_label("Resume at dose (mg)").fill("20")
    page.get_by_label("Resume reason").select_option("hematologic")
    page.get_by_role("button", name="Resume course").click()
    expect(page.locator("#course-dose")).to_contain_text("20 mg daily")
    expect(page.locator("#dose-history-list")).to_contain_text("25 mg → 20 mg")
    assert_accessible(page)


def test_pharmacist_acknowledges_a_critical_warning_with_the_keyboard(portal, page, sign_in, assert_accessible):
    world = portal.world
    patient = critical_platelets(world)
    ack = {"rule": "R-CBC-2", "reason": "reviewed"}
    number = authorize(world, patient, quantity=21, acknowledgements=[ack]).json["authorization_number"]
    sign_in(page, "pharmacist")
    page.get_by_label("Authorization number").fill(number)
    page.get_by_label("REMS patient ID").fill(patient["rems_patient_id"])
    page.get_by_label("Days' supply").fill("28")
    page.get_by_label("Quantity").fill("21")
    page.get_by_label("Medication Guide provided").check()
    page.get_by_label("Counseling checklist completed").check()
    page.get_by_role("button", name="Check and authorize").click()
    result = page.locator("#result")
    expect(result.get_by_role("heading", name="Denied")).to_be_visible()
    expect(result.locator(".warning", has_text="R-CBC-2")).to_contain_text("24.321 10*3/uL")
    assert_accessible(page)
    reason = page.get_by_label("Reason for going ahead despite R-CBC-2")
    reason.focus()
    page.keyboard.type("Prescriber confirmed: dispense, recheck counts in 7 days.")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Prescriber contacted at (R-CBC-2)")).to_be_focused()
    page.get_by_label("Prescriber contacted at (R-CBC-2)").fill((NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Check and authorize").focus()
    page.keyboard.press("Enter")
    expect(result.get_by_role("heading", name="Approved")).to_be_visible()
    expect(page.locator("#confirmation-number")).not_to_be_empty()
    assert_accessible(page)
