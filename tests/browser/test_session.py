"""Signing in and out of the portal in Chromium (UI.md, "Sign-in")."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.helpers import NOW


def test_sign_in_lands_on_the_role_home_and_sign_out_ends_the_session(portal, page, sign_in, assert_accessible):
    page.goto("/login")
    assert_accessible(page)
    sign_in(page, "pharmacist")
    expect(page).to_have_url(re.compile(r"/pharmacy$"))
    expect(page.locator("#signed-in-as")).to_contain_text(portal.world.names["pharmacist"])
    expect(page.locator("#signed-in-as")).to_contain_text("Pharmacist")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/pharmacy")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fpharmacy$"))


def test_a_wrong_password_or_email_says_the_same_and_keeps_the_email(portal, page):
    for email, password in ((portal.world.emails["prescriber"], "not the password!"), ("nobody@x.org", PASSWORD)):
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect")
        expect(page.get_by_label("Email")).to_have_value(email)
        expect(page.get_by_label("Password")).to_have_value("")


def test_fifteen_idle_minutes_on_the_sandbox_clock_sign_the_browser_out(portal, context, page, sign_in):
    sign_in(page, "prescriber")
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
    context.set_extra_http_headers({"X-Rems-Now": (NOW + timedelta(minutes=15)).isoformat()})
    page.goto("/prescriber")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.get_by_role("status")).to_contain_text("signed out after 15 minutes without activity")
