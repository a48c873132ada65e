"""Program staff's pages in Chromium (UI.md, "Program staff (admin)"): participants with
search, the buttons a state allows, suspending and reinstating, patients awaiting review,
creating and disabling users — each change the same one the API makes."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.browser.screenshots import take
from tests.helpers import (
    ADULT_FRP,
    ADULT_MALE,
    NOW,
    VALID_NPIS,
    add_survey,
    add_test,
    complete_answers,
    enrolled,
    make_pharmacy,
    make_prescriber,
)
from workflows.patients import RiskCategory
from workflows.surveys import questions_for


def buttons(page) -> list[str]:
    return page.locator("section[aria-labelledby=actions-heading] button").all_inner_texts()


def audit_actions(world, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = world.api.as_(world.auditor).get(f"/api/v1/audit/events?{query}")
    assert r.status_code == 200, r.json
    return r.json["items"]


def test_admin_suspends_and_reinstates_a_prescriber(portal, page, sign_in, assert_accessible, tmp_path):
    world = portal.world
    doctor = make_prescriber(world.runtime, VALID_NPIS[2], now=NOW - timedelta(days=30))
    sign_in(page, "admin")
    expect(page).to_have_url(re.compile(r"/admin$"))
    page.get_by_role("link", name="Prescribers").first.click()
    page.get_by_label("Search", exact=True).fill(VALID_NPIS[2])
    page.get_by_role("button", name="Search").click()
    rows = page.locator("tr.participant-row")
    expect(rows).to_have_count(1)
    assert_accessible(page)
    rows.get_by_role("link").click()
    expect(page.locator("#participant-status")).to_have_text("certified")
    assert buttons(page) == ["Suspend", "Decertify"]  # what a certified prescriber allows

    # A suspension needs a reason: refused next to the field, nothing changed.
    page.get_by_role("button", name="Suspend").click()
    expect(page.locator("#suspend-reason-error")).to_be_visible()
    expect(page.locator("#participant-status")).to_have_text("certified")

    page.get_by_label("Reason to suspend").fill("License under review")
    page.get_by_role("button", name="Suspend").click()
    expect(page.locator("#participant-status")).to_have_text("suspended")
    expect(page.get_by_role("status")).to_contain_text("Prescriber suspended.")
    assert buttons(page) == ["Reinstate", "Decertify"]
    expect(page.locator("tr.history-row").first).to_contain_text("prescriber.suspended")
    expect(page.locator("tr.history-row").first).to_contain_text("License under review")
    assert world.api.as_(world.admin).get(f"/api/v1/prescribers/{doctor.id}").json["status"] == "suspended"
    assert_accessible(page)
    take(page, "admin", tmp_path)

    page.get_by_role("button", name="Reinstate").click()
    expect(page.locator("#participant-status")).to_have_text("certified")
    assert world.api.as_(world.admin).get(f"/api/v1/prescribers/{doctor.id}").json["status"] == "certified"
    # The same audit entries the API's suspend and reinstate write: the admin's, with the reason.
    entries = audit_actions(world, prescriber_id=doctor.id)
    actions = [e["action"] for e in entries]
    assert actions[:2] == ["prescriber.reinstated", "prescriber.suspended"]
    assert {e["actor"]["role"] for e in entries[:2]} == {"admin"}
    assert entries[1]["details"]["reason"] == "License under review"


def test_admin_certifies_a_pending_pharmacy_with_every_attestation(portal, page, sign_in, assert_accessible):
    world = portal.world
    store = make_pharmacy(world.runtime, "2345678", certified=False)
    sign_in(page, "admin")
    page.goto("/admin/pharmacies?q=2345678")
    assert_accessible(page)
    page.get_by_role("link", name=store.name).click()
    expect(page.locator("#participant-status")).to_have_text("pending")
    assert buttons(page) == ["Certify", "Decertify"]
    assert_accessible(page)
    page.get_by_label("Staff trained").check()
    page.get_by_role("button", name="Certify", exact=True).click()  # two attestations missing
    expect(page.locator("#participant-status")).to_have_text("pending")
    expect(page.get_by_label("Staff trained")).to_be_checked()  # the values are kept
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Dispensing procedures in place").check()
    page.get_by_label("Records available for audit").check()
    page.get_by_role("button", name="Certify", exact=True).click()
    expect(page.locator("#participant-status")).to_have_text("certified")
    got = world.api.as_(world.admin).get(f"/api/v1/pharmacies/{store.id}").json
    assert got["status"] == "certified" and got["certified_until"]


def test_patients_awaiting_review_are_reinstated_and_resolved(portal, page, sign_in, assert_accessible):
    world = portal.world
    halted = enrolled(world, ADULT_FRP)
    assert add_test(world, halted["id"], NOW - timedelta(hours=2), result="positive").status_code == 201
    flagged = enrolled(world, ADULT_MALE)
    flag = questions_for(RiskCategory.MALE_ADULT)[0]
    answers = complete_answers("MALE_ADULT", **{flag: True})
    assert add_survey(world, flagged["id"], answers).status_code == 201
    sign_in(page, "admin")
    halted_row = page.locator(f"tr.review-row[data-rems-patient-id='{halted['rems_patient_id']}']")
    flagged_row = page.locator(f"tr.review-row[data-rems-patient-id='{flagged['rems_patient_id']}']")
    expect(halted_row).to_contain_text("positive pregnancy test")
    expect(flagged_row).to_be_visible()
    assert_accessible(page)
    halted_row.get_by_label(re.compile("^Reason for ")).fill("Test was a lab error; repeat negative")
    halted_row.get_by_role("button", name="Reinstate").click()
    expect(page.get_by_role("status")).to_contain_text(f"Patient {halted['rems_patient_id']} reinstated")
    flagged_row.get_by_role("button", name="Resolve intervention").click()
    expect(page.get_by_role("status")).to_contain_text(f"Patient {flagged['rems_patient_id']} resolved")
    expect(halted_row).to_have_count(0)
    expect(flagged_row).to_have_count(0)
    for patient in (halted, flagged):
        status = world.api.as_(world.admin).get(f"/api/v1/patients/{patient['id']}").json["status"]
        assert status not in ("halted", "needs_intervention")


def test_admin_creates_a_user_who_signs_in_and_disables_it(portal, browser, page, sign_in, assert_accessible):
    world = portal.world
    sign_in(page, "admin")
    page.get_by_role("link", name="Users").first.click()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    assert_accessible(page)

    # A pharmacist without a pharmacy: refused next to the field, values kept.
    page.get_by_label("Name").fill("Pat Counter")
    page.get_by_label("Role").select_option("pharmacist")
    page.get_by_label("Email").fill("pat.counter@portal.example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#pharmacy_id-error")).to_contain_text("Required for the pharmacist role.")
    expect(page.get_by_label("Name")).to_have_value("Pat Counter")
    page.get_by_label("Pharmacy", exact=True).select_option(str(world.pharmacy.id))
    page.get_by_label("Training completed").fill("2026-01-05")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_contain_text("User Pat Counter created (pharmacist).")
    row = page.locator("tr.user-row", has_text="Pat Counter")
    expect(row).to_contain_text("pat.counter@portal.example.org")
    expect(row.locator(".user-state")).to_have_text("active")

    # The new user signs in (in a browser of its own) ...
    other = browser.new_context(base_url=portal.url, extra_http_headers={"X-Rems-Now": NOW.isoformat()})
    try:
        theirs = other.new_page()
        theirs.goto("/login")
        theirs.get_by_label("Email").fill("pat.counter@portal.example.org")
        theirs.get_by_label("Password").fill(PASSWORD)
        theirs.get_by_role("button", name="Sign in").click()
        expect(theirs).to_have_url(re.compile(r"/pharmacy$"))

        # ... and is disabled: its session ends at its next request.
        row.get_by_role("button", name="Disable user").click()
        expect(page.get_by_role("status")).to_contain_text("User Pat Counter disabled")
        expect(page.locator("tr.user-row", has_text="Pat Counter").locator(".user-state")).to_have_text("disabled")
        theirs.goto("/pharmacy")
        expect(theirs).to_have_url(re.compile(r"/login"))
        theirs.get_by_label("Email").fill("pat.counter@portal.example.org")
        theirs.get_by_label("Password").fill(PASSWORD)
        theirs.get_by_role("button", name="Sign in").click()
        expect(theirs.get_by_role("alert")).to_have_text("Email or password is incorrect")
    finally:
        other.close()
    entries = audit_actions(world, action="user.disabled")
    assert entries and entries[0]["actor"]["role"] == "admin"


def test_a_disabled_users_token_stops_at_once(portal, page, sign_in):
    world = portal.world
    created = world.api.as_(world.admin).post("/api/v1/users", json={"name": "Token Holder", "role": "auditor"})
    assert created.status_code == 201
    token = created.json["token"]
    assert world.api.as_(token).get("/api/v1/me").status_code == 200
    sign_in(page, "admin")
    page.goto("/admin/users?q=Token+Holder")
    page.locator("tr.user-row", has_text="Token Holder").get_by_role("button", name="Disable user").click()
    expect(page.get_by_role("status")).to_contain_text("disabled")
    assert world.api.as_(token).get("/api/v1/me").status_code == 401


def test_other_roles_get_403_on_the_admin_pages(portal, page, sign_in):
    sign_in(page, "auditor")
    for path in ("/admin", "/admin/prescribers", f"/admin/prescribers/{portal.world.prescriber.id}", "/admin/users"):
        assert page.goto(path).status == 403, path
