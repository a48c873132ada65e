"""The prescriber in clinic, in Chromium (UI.md, "Prescriber")."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from tests.helpers import NOW


def local(value):
    """A ``datetime-local`` input value (UTC)."""
    return value.strftime("%Y-%m-%dT%H:%M")


def record_test(page, collected_at):
    page.get_by_label("Collected at").fill(local(collected_at))
    page.get_by_label("Result").select_option("negative")
    page.get_by_label("Sensitivity (mIU/mL)").fill("25")
    page.get_by_role("button", name="Record test").click()
    expect(page.get_by_role("status")).to_contain_text("Pregnancy test recorded (negative)")


def test_enroll_an_frp_patient_record_two_tests_and_get_an_authorization(
    portal, context, page, sign_in, assert_accessible
):
    context.set_extra_http_headers({"X-Rems-Now": (NOW - timedelta(days=11)).isoformat()})
    sign_in(page, "prescriber")
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Enroll patient").click()
    assert_accessible(page)
    page.get_by_label("First name").fill("Maya")
    page.get_by_label("Last name").fill("Lindqvist")
    page.get_by_label("Date of birth").fill("1991-05-06")
    page.get_by_label("Risk category").select_option("FRP_ADULT")
    page.get_by_label("Menstrual cycle").select_option("regular")
    page.get_by_label("PPAF signed").check()
    page.get_by_label("Counseling completed").check()
    page.get_by_role("button", name="Enroll").click()
    expect(page.get_by_role("status")).to_contain_text("Maya Lindqvist enrolled")
    expect(page).to_have_url(re.compile(r"/prescriber/patients/[0-9a-f-]{36}$"))
    assert_accessible(page)
    record_test(page, NOW - timedelta(days=12))

    # Eleven days later (the sandbox clock): that session has long ended idle; sign in again.
    patient_page = page.url.split("#")[0]
    context.set_extra_http_headers({"X-Rems-Now": NOW.isoformat()})
    sign_in(page, "prescriber")
    page.goto(patient_page)
    record_test(page, NOW - timedelta(hours=3))
    page.get_by_label("Completed at").fill(local(NOW - timedelta(hours=1)))
    page.get_by_role("button", name="Record survey").click()
    expect(page.get_by_role("status")).to_contain_text("Survey recorded")

    page.get_by_label("Days' supply").fill("28")
    page.get_by_label("Quantity").fill("28")
    page.get_by_label("Strength (mg)").select_option("25")
    page.get_by_label("Counseled on risks").check()
    page.get_by_label("Contraception confirmed").check()
    page.get_by_role("button", name="Request authorization").click()
    result = page.locator("#result")
    expect(result.get_by_role("heading", name="Approved")).to_be_visible()
    number = page.locator("#authorization-number").inner_text().strip()
    expect(page.locator("#authorization-expires")).to_be_visible()
    assert_accessible(page)
    row = page.locator(f"#authorization-{number}")
    expect(row).to_contain_text("issued")

    page.get_by_role("link", name="Patients").first.click()
    expect(page.locator("#patients-table")).to_contain_text("Maya Lindqvist")
    expect(page.locator("#patients-table")).to_contain_text(f"{number} (issued)")

    page.goto(patient_page)
    page.locator(f"#authorization-{number}").get_by_role("button", name="Void").click()
    expect(page.get_by_role("status")).to_contain_text(f"Authorization {number} voided.")
    expect(page.locator(f"#authorization-{number}")).to_contain_text("voided")


def test_a_denied_authorization_lists_every_reason_and_bad_input_stays(portal, page, sign_in, assert_accessible):
    sign_in(page, "prescriber")
    page.get_by_role("link", name="Enroll patient").click()
    page.get_by_label("First name").fill("Ines")
    page.get_by_label("Last name").fill("Moreau")
    page.get_by_label("Date of birth").fill("1988-01-02")
    page.get_by_label("Risk category").select_option("FRP_ADULT")
    page.get_by_role("button", name="Enroll").click()
    # No menstrual cycle, no PPAF: the form comes back with the values kept and errors beside the fields.
    expect(page.get_by_label("First name")).to_have_value("Ines")
    expect(page.locator(".invalid-feedback").first).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Menstrual cycle").select_option("irregular")
    page.get_by_label("PPAF signed").check()
    page.get_by_label("Counseling completed").check()
    page.get_by_role("button", name="Enroll").click()
    expect(page.get_by_role("status")).to_contain_text("Ines Moreau enrolled")
    page.get_by_label("Strength (mg)").select_option("10")
    page.get_by_role("button", name="Request authorization").click()
    result = page.locator("#result")
    expect(result.get_by_role("heading", name="Denied")).to_be_visible()
    assert result.locator("li.reason").count() >= 2
    for item in range(result.locator("li.reason").count()):
        expect(result.locator("li.reason").nth(item).locator(".reason-next-step")).to_contain_text("Next step:")
    assert_accessible(page)
