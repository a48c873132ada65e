"""The README's screenshots of the pharmacist's and the prescriber's homes, taken on
real scenarios (the auditor's and program staff's are taken by test_audit and
test_admin). ``REMS_UPDATE_SCREENSHOTS=1`` writes them into docs/screenshots/."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.screenshots import take
from tests.helpers import ADULT_FRP, ADULT_MALE, approved_authorization, dispense, enrolled, ready_patient


def test_pharmacist_screenshot_an_approval_in_the_queue_and_a_denial_with_its_next_steps(
    portal, page, sign_in, tmp_path
):
    world = portal.world
    patient, auth = approved_authorization(world, ADULT_MALE)
    assert dispense(world, auth["authorization_number"], patient["rems_patient_id"]).json["decision"] == "approved"
    other, other_auth = approved_authorization(world, ADULT_MALE)
    sign_in(page, "pharmacist")
    # A check that fails several rules: another patient's ID, too many days, no counseling.
    page.get_by_label("Authorization number").fill(other_auth["authorization_number"])
    page.get_by_label("REMS patient ID").fill(patient["rems_patient_id"])
    page.get_by_label("Days' supply").fill("35")
    page.get_by_label("Quantity").fill("35")
    page.get_by_role("button", name="Check and authorize").click()
    expect(page.get_by_role("heading", name="Denied")).to_be_visible()
    take(page, "pharmacist", tmp_path)


def test_prescriber_screenshot_patients_with_their_due_dates(portal, page, sign_in, tmp_path):
    world = portal.world
    ready_patient(world, ADULT_FRP)
    approved_authorization(world, ADULT_MALE)
    enrolled(world, {**ADULT_FRP, "first_name": "Maren", "last_name": "Lindqvist"})
    sign_in(page, "prescriber")
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
    take(page, "prescriber", tmp_path)
