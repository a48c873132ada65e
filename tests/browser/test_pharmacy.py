"""The pharmacist at the counter, in Chromium (UI.md, "Pharmacist")."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlmodel import col, select

from rems_service.db.models import DecisionRecord
from rems_service.web.decisions import with_labels
from tests.helpers import ADULT_FRP, approved_authorization, dispense

PHARMACY_LABELS = {
    "authorization_number": "Authorization number",
    "rems_patient_id": "REMS patient ID",
    "days_supply": "Days' supply",
    "quantity": "Quantity",
    "medication_guide_provided": "Medication Guide provided",
    "checklist_completed": "Counseling checklist completed",
}


def fill_check(page, auth_number, rems_patient_id, days=28, quantity=28, counseled=True):
    page.get_by_label("Authorization number").fill(auth_number)
    page.get_by_label("REMS patient ID").fill(rems_patient_id)
    page.get_by_label("Days' supply").fill(str(days))
    page.get_by_label("Quantity").fill(str(quantity))
    if counseled:
        page.get_by_label("Medication Guide provided").check()
        page.get_by_label("Counseling checklist completed").check()


def test_approved_check_then_hand_over(portal, page, sign_in, assert_accessible):
    _patient, auth = approved_authorization(portal.world)
    sign_in(page, "pharmacist")
    expect(page.get_by_role("heading", name="Dispense check")).to_be_visible()
    assert_accessible(page)
    fill_check(page, auth["authorization_number"], auth["rems_patient_id"])
    page.get_by_role("button", name="Check and authorize").click()
    result = page.locator("#result")
    expect(result.get_by_role("heading", name="Approved")).to_be_visible()
    number = page.locator("#confirmation-number").inner_text().strip()
    assert number
    expect(page.locator("#hand-over-ends")).to_be_visible()
    row = page.locator(f"#confirmation-{number}")
    expect(row).to_contain_text(auth["rems_patient_id"])
    expect(row.locator(".time-left")).to_have_text(re.compile(r"\d+ h \d+ min left"))
    assert_accessible(page)
    row.get_by_role("button", name="Complete hand-over").click()
    expect(page.get_by_role("status")).to_contain_text(f"Hand-over of {number} recorded.")
    expect(page.locator(f"#confirmation-{number}")).to_have_count(0)
    expect(page.locator("#recent-table")).to_contain_text(number)
    assert portal.world.api.as_(portal.world.pharmacist_token).get(f"/api/v1/dispenses/{number}").json["status"] == (
        "dispensed"
    )


def latest_decision(runtime):
    """The newest recorded decision (its reasons as stored)."""
    with runtime.uow() as uow:
        return uow.session.exec(select(DecisionRecord).order_by(col(DecisionRecord.audit_seq).desc())).first()


def test_denied_check_shows_every_reason_with_its_next_step(portal, page, sign_in, assert_accessible):
    _patient, auth = approved_authorization(portal.world, ADULT_FRP)
    sign_in(page, "pharmacist")
    # Several faults at once: another patient's ID, more days than authorized, no counseling.
    fill_check(page, auth["authorization_number"], "RP-WRONG99", days=40, counseled=False)
    page.get_by_role("button", name="Check and authorize").click()
    result = page.locator("#result")
    expect(result.get_by_role("heading", name="Denied")).to_be_visible()
    recorded = latest_decision(portal.world.runtime)
    assert recorded.outcome == "denied" and len(recorded.reasons) >= 2, recorded.reasons
    shown = result.locator("li.reason")
    expect(shown).to_have_count(len(recorded.reasons))
    for item, reason in enumerate(recorded.reasons):
        assert reason["next_step"], reason
        expect(shown.nth(item).locator(".reason-code")).to_have_text(reason["code"])
        expect(shown.nth(item).locator(".reason-rule")).to_have_text(reason["rule"])
        expect(shown.nth(item).locator(".reason-message")).to_have_text(reason["message"])
        # The rule's next step, with the request fields it names shown as this form's labels.
        next_step = with_labels(reason["next_step"], PHARMACY_LABELS)
        expect(shown.nth(item).locator(".reason-next-step")).to_have_text(f"Next step: {next_step}")
        assert "`" not in next_step, next_step
    # The form keeps what was entered, and the check is listed among the pharmacy's recent ones.
    expect(page.locator("#checks-table tbody tr").first).to_contain_text("denied")
    expect(page.locator("#checks-table tbody tr").first).to_contain_text(f"#{recorded.audit_seq}")
    expect(page.get_by_label("Authorization number")).to_have_value(auth["authorization_number"])
    expect(page.get_by_label("Days' supply")).to_have_value("40")
    assert_accessible(page)


def test_reverse_frees_the_authorization(portal, page, sign_in, assert_accessible):
    _patient, auth = approved_authorization(portal.world)
    r = dispense(portal.world, auth["authorization_number"], auth["rems_patient_id"])
    assert r.json["decision"] == "approved", r.json
    number = r.json["confirmation_number"]
    sign_in(page, "pharmacist")
    page.goto(f"/pharmacy/dispenses/{number}")
    expect(page.get_by_role("heading", name=f"Confirmation {number}")).to_be_visible()
    expect(page.locator("#dispense-status")).to_have_text("confirmed")
    assert_accessible(page)
    page.goto("/pharmacy")
    page.locator(f"#confirmation-{number}").get_by_role("button", name="Reverse").click()
    expect(page.get_by_role("status")).to_contain_text(f"Confirmation {number} reversed")
    expect(page.locator(f"#confirmation-{number}")).to_have_count(0)
    again = dispense(portal.world, auth["authorization_number"], auth["rems_patient_id"])
    assert again.json["decision"] == "approved", again.json


def test_check_and_hand_over_with_the_keyboard_alone(portal, page, sign_in):
    _patient, auth = approved_authorization(portal.world)
    sign_in(page, "pharmacist")
    page.locator("body").focus()
    keyboard = page.keyboard
    # From the top of the page: Tab to the first field of the dispense check.
    for _ in range(12):
        keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "authorization_number":
            break
    assert page.evaluate("document.activeElement.id") == "authorization_number"
    keyboard.type(auth["authorization_number"])
    keyboard.press("Tab")
    keyboard.type(auth["rems_patient_id"])
    keyboard.press("Tab")
    keyboard.type("28")
    keyboard.press("Tab")
    keyboard.type("28")
    keyboard.press("Tab")
    keyboard.press("Space")
    keyboard.press("Tab")
    keyboard.press("Space")
    keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Check and authorize"
    keyboard.press("Enter")
    expect(page.locator("#result").get_by_role("heading", name="Approved")).to_be_visible()
    number = page.locator("#confirmation-number").inner_text().strip()
    # Tab on to this confirmation's Complete hand-over button and press it.
    for _ in range(60):
        keyboard.press("Tab")
        if page.evaluate(
            "document.activeElement.textContent.trim() === 'Complete hand-over' && "
            f"document.activeElement.closest('tr').id === 'confirmation-{number}'"
        ):
            break
    keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"Hand-over of {number} recorded.")


def test_another_pharmacys_confirmation_is_404_and_a_prescriber_page_403(portal, page, sign_in, assert_accessible):
    _patient, auth = approved_authorization(portal.world)
    r = dispense(
        portal.world,
        auth["authorization_number"],
        auth["rems_patient_id"],
        token=portal.world.tokens["other_pharmacist"],
    )
    number = r.json["confirmation_number"]
    sign_in(page, "pharmacist")
    response = page.goto(f"/pharmacy/dispenses/{number}")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert_accessible(page)
    response = page.goto("/prescriber")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert_accessible(page)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
