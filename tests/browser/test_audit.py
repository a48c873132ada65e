"""The auditor's pages in Chromium (UI.md, "Auditor"): filtering, paging, an entry,
verifying the chain, exporting what the API exports, the charts; every read recorded."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlencode

from playwright.sync_api import expect
from sqlalchemy import text
from sqlmodel import select

from rems_service.db.models import AuditEntry
from rems_service.services import users
from tests.browser.screenshots import take
from tests.helpers import ADULT_MALE, NOW, approved_authorization, dispense, tamper_with_audit
from workflows.actors import SYSTEM


def denied_dispense(world) -> tuple[dict, dict]:
    """An approved authorization dispensed, then presented again: a denial (already used)."""
    patient, auth = approved_authorization(world, ADULT_MALE)
    first = dispense(world, auth["authorization_number"], patient["rems_patient_id"])
    assert first.status_code == 201 and first.json["decision"] == "approved", first.json
    again = dispense(world, auth["authorization_number"], patient["rems_patient_id"])
    assert again.json["decision"] == "denied", again.json
    return patient, again.json


def fetch_link(page, name: str):
    """Download what the link ``name`` points at, in the page's session (Chromium leaves the
    context's extra headers, the sandbox clock among them, off a download it starts itself;
    without the clock the session would look idle for months and end)."""
    link = page.get_by_role("link", name=name)
    assert link.get_attribute("download") is not None
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200, response.text()[:500]
    assert response.headers["content-disposition"].startswith("attachment;")
    return response


def api_csv(world, **params) -> list[list[str]]:
    r = world.api.as_(world.auditor).get(f"/api/v1/audit/export?{urlencode({'format': 'csv', **params})}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return list(csv.reader(io.StringIO(r.get_data(as_text=True))))


def table_seqs(page) -> list[int]:
    return [int(s) for s in page.locator("tr.audit-row").evaluate_all("rows => rows.map(r => r.dataset.seq)")]


def reads(world, operation: str) -> list[AuditEntry]:
    with world.runtime.uow() as uow:
        rows = uow.session.exec(select(AuditEntry).where(AuditEntry.action == "audit.read")).all()
        return [r for r in rows if r.details.get("operation") == operation]


def test_auditor_filters_denials_verifies_the_chain_and_exports_the_apis_rows(
    portal, page, sign_in, assert_accessible, tmp_path
):
    world = portal.world
    patient, denial = denied_dispense(world)
    sign_in(page, "auditor")
    expect(page).to_have_url(re.compile(r"/audit$"))
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()

    page.get_by_label("Outcome").select_option("denied")
    page.get_by_label("REMS patient ID").fill(patient["rems_patient_id"].lower())  # any case, as the API
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"outcome=denied"))
    page.wait_for_load_state()
    outcomes = page.locator("tr.audit-row .outcome").all_inner_texts()
    assert outcomes and set(outcomes) == {"denied"}
    expect(page.locator("tr.audit-row").first).to_contain_text("AUTHORIZATION_ALREADY_USED")
    expect(page.get_by_label("Outcome")).to_have_value("denied")  # the filters are kept
    assert_accessible(page)
    page.get_by_label("REMS patient ID").fill("")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"rems_patient_id=(&|$)"))
    page.wait_for_load_state()
    take(page, "auditor", tmp_path)

    # Export CSV for the current filters: the same rows as the API's export.
    download = fetch_link(page, "Export CSV")
    portal_rows = list(csv.reader(io.StringIO(download.text())))
    assert portal_rows == api_csv(world, outcome="denied")
    assert len(portal_rows) > 1 and {r[portal_rows[0].index("outcome")] for r in portal_rows[1:]} == {"denied"}
    ndjson = fetch_link(page, "Export NDJSON")
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    assert re.fullmatch(r'attachment; filename="audit-through-\d+\.ndjson"', ndjson.headers["content-disposition"])

    # An entry: every field, hashes and the snapshot digest.
    page.get_by_role("link", name=re.compile(r"^Entry \d+$")).first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Audit entry \d+$"))).to_be_visible()
    for label in ("Snapshot digest", "Previous hash", "Hash"):
        expect(page.locator("dt", has_text=re.compile(f"^{label}$"))).to_be_visible()
    expect(page.locator("#inputs-digest")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(page.locator("#entry-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    assert_accessible(page)

    # Verify chain.
    page.goto("/audit")
    page.get_by_role("button", name="Verify chain").click()
    expect(page.get_by_role("heading", name="Chain intact")).to_be_visible()
    expect(page.locator("#entries-checked")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#head-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    assert_accessible(page)
    assert denial["reasons"]


def test_every_page_an_auditor_reads_is_an_audit_entry(portal, page, sign_in):
    world = portal.world
    before = {op: len(reads(world, op)) for op in ("list", "charts", "get", "verify", "export")}
    sign_in(page, "auditor")  # lands on /audit: a list and the charts
    page.get_by_role("link", name=re.compile(r"^Entry \d+$")).first.click()
    page.goto("/audit")
    page.get_by_role("button", name="Verify chain").click()
    page.goto("/audit")
    fetch_link(page, "Export CSV")
    after = {op: len(reads(world, op)) for op in before}
    assert after == {
        "list": before["list"] + 3,
        "charts": before["charts"] + 3,
        "get": before["get"] + 1,
        "verify": before["verify"] + 1,
        "export": before["export"] + 1,
    }
    last = reads(world, "list")[-1]
    assert last.actor_role == "auditor"


def test_next_page_continues_newest_first_with_the_same_filters(portal, page, sign_in):
    world = portal.world
    for n in range(55):  # more than a page of user.created entries
        users.create_user(world.runtime.uow(), SYSTEM, NOW, name=f"Paging Auditor {n}", role="auditor")
    sign_in(page, "auditor")
    page.get_by_label("Action").select_option("user.created")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"action=user\.created"))
    page.wait_for_load_state()
    first = table_seqs(page)
    assert len(first) == 50 and first == sorted(first, reverse=True)
    page.get_by_role("button", name="Next page").click()
    expect(page).to_have_url(re.compile(r"cursor="))
    page.wait_for_load_state()
    expect(page.get_by_label("Action")).to_have_value("user.created")
    second = table_seqs(page)
    assert second and max(second) < min(first) and second == sorted(second, reverse=True)
    assert set(page.locator("tr.audit-row td.font-monospace").all_inner_texts()) == {"user.created"}


def test_charts_are_images_drawn_here_with_their_numbers_as_text(portal, page, sign_in, assert_accessible):
    denied_dispense(portal.world)
    external = []
    page.on("request", lambda r: None if r.url.startswith((portal.url, "data:")) else external.append(r.url))
    sign_in(page, "auditor")
    per_day = page.locator("#chart-per-day img")
    reasons = page.locator("#chart-denial-reasons img")
    expect(per_day).to_have_attribute("src", re.compile(r"^data:image/svg\+xml;base64,"))
    expect(per_day).to_have_attribute("alt", re.compile(r"^Decisions per day by outcome, .*\d+ approved, \d+ denied"))
    expect(reasons).to_have_attribute("alt", re.compile(r"AUTHORIZATION_ALREADY_USED \d+"))
    assert per_day.evaluate("img => img.complete && img.naturalWidth > 0")
    page.get_by_text("Most frequent denial reasons, as a table").click()
    expect(page.locator("#chart-denial-reasons tbody")).to_contain_text("AUTHORIZATION_ALREADY_USED")
    assert not external
    assert_accessible(page)


def test_bad_filters_are_shown_next_to_the_field_and_change_nothing(portal, page, sign_in):
    sign_in(page, "auditor")
    page.goto("/audit?since=2026-06-20&until=2026-06-10&rems_patient_id=" + "X" * 41)
    expect(page.locator("#until-error")).to_have_text("To must be on or after From.")
    expect(page.locator("#rems_patient_id-error")).to_be_visible()
    expect(page.get_by_label("From")).to_have_value("2026-06-20")
    assert page.locator("tr.audit-row").count() == 0


TRIGGERS = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entries' ORDER BY name"


def test_a_broken_chain_names_its_first_invalid_entry(portal, page, sign_in):
    world = portal.world
    denied_dispense(world)
    with world.runtime.uow() as uow:
        target = uow.session.exec(select(AuditEntry).where(AuditEntry.action == "dispense.decided")).first()
        seq, original = target.seq, target.outcome
        # The session's database is shared: its append-only triggers are put back afterwards.
        triggers = uow.session.execute(text(TRIGGERS)).scalars().all()
    assert triggers

    def rewrite(outcome: str) -> None:
        with world.runtime.uow() as uow:
            tamper_with_audit(uow.session)
            uow.session.get(AuditEntry, seq).outcome = outcome
            uow.commit()

    try:
        rewrite("approved" if original == "denied" else "denied")
        sign_in(page, "auditor")
        page.get_by_role("button", name="Verify chain").click()
        expect(page.get_by_role("heading", name="Chain broken")).to_be_visible()
        expect(page.locator("#first-invalid-seq")).to_have_text(str(seq))
    finally:
        rewrite(original)
        with world.runtime.uow() as uow:
            for sql in triggers:
                uow.session.execute(text(sql))
            uow.commit()
        with world.runtime.uow() as uow:
            assert sorted(uow.session.execute(text(TRIGGERS)).scalars().all()) == sorted(triggers)
    page.goto("/audit")
    page.get_by_role("button", name="Verify chain").click()
    expect(page.get_by_role("heading", name="Chain intact")).to_be_visible()


def test_other_roles_get_403_on_the_audit_pages(portal, page, sign_in):
    sign_in(page, "pharmacist")
    for path in ("/audit", "/audit/entries/1", "/audit/export.csv"):
        response = page.goto(path)
        assert response.status == 403, path
