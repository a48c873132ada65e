"""The portal through the test client (UI.md): sign-in, sessions, CSRF, throttling,
security headers, tenancy, and decisions identical to the API's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from markupsafe import escape
from prometheus_client import REGISTRY
from sqlmodel import col, select

from rems_service.db.models import AuditEntry, DecisionRecord, User
from rems_service.services import decisions, users
from rems_service.web.decisions import with_labels
from tests.helpers import (
    ADULT_FRP,
    ADULT_MALE,
    NOW,
    TRAINED,
    approved_authorization,
    authorize,
    dispense,
    ready_patient,
)
from workflows.actors import SYSTEM

PASSWORD = "a long enough passphrase"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Portal:
    """A browser-like test client: cookies, the sandbox clock, and the pages' CSRF tokens."""

    def __init__(self, client: Any, now: datetime = NOW):
        self.client = client
        self.now = now

    def headers(self) -> dict[str, str]:
        return {"X-Rems-Now": self.now.isoformat()}

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers())

    def csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code)
        match = CSRF.search(page.get_data(as_text=True))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, data: dict[str, Any], token_from: str | None = None) -> Any:
        sent = dict(data)
        if token_from is not None:
            sent["csrf_token"] = self.csrf(token_from)
        return self.client.post(path, data=sent, headers=self.headers())

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        return self.post("/login", {"email": email, "password": password}, token_from="/login")


def person(runtime: Any, role: str, email: str, **binding: Any) -> str:
    """A user who can sign in; returns its bearer token (the same user calls the API)."""
    _user, token = users.create_user(
        runtime.uow(), SYSTEM, TRAINED, name=f"{role} person", role=role, email=email, password=PASSWORD, **binding
    )
    return token


@pytest.fixture
def pharmacist(world) -> str:
    return person(
        world.runtime, "pharmacist", "pharm@example.org", pharmacy_id=world.pharmacy.id, training_completed_at=TRAINED
    )


@pytest.fixture
def portal(client) -> Portal:
    return Portal(client)


# Users: email and password (POST /api/v1/users, rems users create)


def test_users_api_takes_an_email_and_a_password_kept_only_as_a_slow_hash(world, runtime):
    api = world.api.as_(world.admin)
    r = api.post(
        "/api/v1/users", json={"name": "Nia", "role": "auditor", "email": " Nia@Example.ORG ", "password": PASSWORD}
    )
    assert r.status_code == 201, r.json
    assert r.json["email"] == "nia@example.org" and "password" not in r.json and "password_hash" not in r.json
    with runtime.uow() as uow:
        stored = uow.session.exec(select(User).where(col(User.email) == "nia@example.org")).one()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    same = api.post(
        "/api/v1/users", json={"name": "N2", "role": "auditor", "email": "NIA@example.org", "password": PASSWORD}
    )
    assert same.status_code == 422 and "email" in same.json["errors"]
    short = api.post(
        "/api/v1/users", json={"name": "N3", "role": "auditor", "email": "n3@example.org", "password": "short"}
    )
    assert short.status_code == 422 and "password" in short.json["errors"]
    alone = api.post("/api/v1/users", json={"name": "N4", "role": "auditor", "password": PASSWORD})
    assert alone.status_code == 422 and "email" in alone.json["errors"]


# Sign-in, session cookie, security headers


def test_sign_in_lands_on_the_role_home_with_a_safe_cookie_and_headers(world, portal, pharmacist):
    page = portal.get("/login")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    r = portal.sign_in("PHARM@example.org")
    assert r.status_code == 302 and r.headers["Location"] == "/pharmacy"
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("rems_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # REMS_ENV=test; production sets it (below)
    home = portal.get("/pharmacy")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert "pharmacist person" in html and "Pharmacist" in html and ">Sign out</button>" in html
    # No inline script or style anywhere the CSP would have to allow.
    assert "<script" not in html and " style=" not in html and "<style" not in html
    assert home.headers["Cache-Control"] == "no-store"


def test_production_cookies_are_secure(make_app):
    app = make_app(ENV_NAME="production")
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_a_wrong_password_and_an_unknown_email_read_the_same(world, portal, pharmacist):
    wrong = portal.sign_in("pharm@example.org", "not the right one").get_data(as_text=True)
    unknown = portal.sign_in("nobody@example.org").get_data(as_text=True)
    for html in (wrong, unknown):
        assert "Email or password is incorrect" in html
    assert portal.get("/pharmacy").status_code == 302


def test_sign_out_ends_the_session(world, portal, pharmacist):
    portal.sign_in("pharm@example.org")
    r = portal.post("/logout", {}, token_from="/pharmacy")
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert portal.get("/pharmacy").headers["Location"].startswith("/login")


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(world, portal, pharmacist, runtime):
    _patient, auth = approved_authorization(world)
    portal.sign_in("pharm@example.org")
    with runtime.uow() as uow:
        before = len(uow.session.exec(select(AuditEntry)).all())
    body = {
        "authorization_number": auth["authorization_number"],
        "rems_patient_id": auth["rems_patient_id"],
        "days_supply": "28",
        "quantity": "28",
        "medication_guide_provided": "y",
        "checklist_completed": "y",
    }
    refused = portal.post("/pharmacy/check", body)
    assert refused.status_code == 400 and "The form was refused" in refused.get_data(as_text=True)
    forged = portal.post("/pharmacy/check", {**body, "csrf_token": "forged"})
    assert forged.status_code == 400
    assert portal.post("/login", {"email": "pharm@example.org", "password": PASSWORD}).status_code == 400
    with runtime.uow() as uow:
        assert len(uow.session.exec(select(AuditEntry)).all()) == before
    accepted = portal.post("/pharmacy/check", body, token_from="/pharmacy")
    assert accepted.status_code == 200 and "Approved" in accepted.get_data(as_text=True)


def test_a_session_idle_for_15_minutes_is_signed_out(world, portal, pharmacist):
    portal.sign_in("pharm@example.org")
    portal.now = NOW + timedelta(minutes=14)
    assert portal.get("/pharmacy").status_code == 200
    portal.now = NOW + timedelta(minutes=28)  # 14 idle minutes again: still signed in
    assert portal.get("/pharmacy").status_code == 200
    portal.now = NOW + timedelta(minutes=43)  # 15 idle minutes
    r = portal.get("/pharmacy")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    assert "without activity" in portal.get("/login").get_data(as_text=True)
    assert portal.get("/pharmacy").status_code == 302


def test_300_wrong_passwords_are_throttled_without_locking_the_right_one_out_for_good(world, make_app, pharmacist):
    # The shared limiter's production default (TestConfig raises it for the rest of the suite).
    portal = Portal(make_app(RATE_LIMIT_FAILED_SIGN_IN="10 per 15 minutes").test_client())
    person(world.runtime, "auditor", "colleague@example.org")
    refusals = {"limit": "sign_in_failures_per_email"}
    before = REGISTRY.get_sample_value("rems_rate_limit_refusals_total", refusals) or 0.0
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        token = portal.csrf("/login")
        statuses = [
            portal.post(
                "/login", {"email": "pharm@example.org", "password": f"wrong {i}", "csrf_token": token}
            ).status_code
            for i in range(300)
        ]
        assert statuses[:10] == [200] * 10  # "Email or password is incorrect"
        assert set(statuses[10:]) == {429}
        throttled = portal.post("/login", {"email": "pharm@example.org", "password": PASSWORD, "csrf_token": token})
        assert throttled.status_code == 429 and "Too many failed sign-ins" in throttled.get_data(as_text=True)
        assert int(throttled.headers["Retry-After"]) > 0
        # The shared limiter's refusals counter (rems_rate_limit_refusals) counts the portal's too.
        assert REGISTRY.get_sample_value("rems_rate_limit_refusals_total", refusals) - before == 291
        # Another person at the same address still signs in.
        assert Portal(portal.client.application.test_client()).sign_in("colleague@example.org").status_code == 302
        clock.shift(timedelta(minutes=16))
        assert portal.sign_in("pharm@example.org").status_code == 302


# Tenancy: another role's page 403, another tenant's object 404


def test_another_roles_page_is_403_and_another_tenants_object_404(world, portal, pharmacist):
    other_prescriber = person(world.runtime, "prescriber", "doc2@example.org", prescriber_id=world.other_prescriber.id)
    assert other_prescriber
    patient = ready_patient(world)
    portal.sign_in("pharm@example.org")
    assert portal.get("/prescriber").status_code == 403
    assert portal.get(f"/prescriber/patients/{patient['id']}").status_code == 403
    portal.post("/logout", {}, token_from="/pharmacy")
    portal.sign_in("doc2@example.org")
    r = portal.get(f"/prescriber/patients/{patient['id']}")
    assert r.status_code == 404 and "Not found" in r.get_data(as_text=True)
    void = portal.post("/prescriber/authorizations/AZ-NOPE/void", {}, token_from="/prescriber")
    assert void.status_code == 404


# Every decision made in the portal is the API's decision


def _recorded(runtime: Any) -> tuple[DecisionRecord, AuditEntry]:
    with runtime.uow() as uow:
        row = uow.session.exec(select(DecisionRecord).order_by(col(DecisionRecord.audit_seq).desc())).first()
        entry = uow.session.get(AuditEntry, row.audit_seq)
        return row, entry


DECISION_FIELDS = ("kind", "outcome", "reasons", "evaluated_at", "program_version", "snapshot", "actor_user_id")
DECISION_FIELDS += ("prescriber_id", "pharmacy_id", "patient_id", "rems_patient_id")
ENTRY_FIELDS = ("effective_at", "actor_user_id", "actor_role", "action", "outcome", "reasons", "program_version")
ENTRY_FIELDS += ("subject", "prescriber_id", "pharmacy_id", "rems_patient_id", "inputs_digest")


def _same_decision(runtime: Any, first: tuple[DecisionRecord, AuditEntry], second: tuple[DecisionRecord, AuditEntry]):
    for name in DECISION_FIELDS:
        assert getattr(first[0], name) == getattr(second[0], name), name
    for name in ENTRY_FIELDS:
        assert getattr(first[1], name) == getattr(second[1], name), name
    # The entry's details name its own decision row; everything else in them is the same.
    assert first[1].details["decision_id"] == str(first[0].id)
    assert second[1].details["decision_id"] == str(second[0].id)
    # ... and its channel: one came through the API, the other through the portal.
    assert {first[1].details["channel"], second[1].details["channel"]} == {"api", "portal"}
    assert {first[0].channel, second[0].channel} == {"api", "portal"}
    same = {"decision_id": None, "channel": None}
    assert {**first[1].details, **same} == {**second[1].details, **same}
    for row, _entry in (first, second):
        assert decisions.replay(runtime.uow(), runtime.program, row.audit_seq).matches


def test_a_portal_dispense_denial_is_the_apis_decision(world, portal, pharmacist, runtime):
    _patient, auth = approved_authorization(world, ADULT_FRP)
    portal.sign_in("pharm@example.org")
    form = {
        "authorization_number": auth["authorization_number"],
        "rems_patient_id": auth["rems_patient_id"],
        "days_supply": "40",
        "quantity": "28",
        "medication_guide_provided": "y",
    }
    page = portal.post("/pharmacy/check", form, token_from="/pharmacy")
    assert page.status_code == 200 and ">Denied</h2>" in page.get_data(as_text=True)
    from_portal = _recorded(runtime)
    api = dispense(
        world,
        auth["authorization_number"],
        auth["rems_patient_id"],
        token=pharmacist,
        days_supply=40,
        counseling={"medication_guide_provided": True, "checklist_completed": False},
    )
    assert api.status_code == 201 and api.json["decision"] == "denied"
    from_api = _recorded(runtime)
    assert from_api[0].audit_seq != from_portal[0].audit_seq
    _same_decision(runtime, from_portal, from_api)
    html = page.get_data(as_text=True)
    labels = {"days_supply": "Days' supply", "rems_patient_id": "REMS patient ID", "quantity": "Quantity"}
    labels |= {"checklist_completed": "Counseling checklist completed", "authorization_number": "Authorization number"}
    for reason in api.json["reasons"]:
        next_step = with_labels(reason["next_step"], labels)
        for value in (reason["code"], reason["rule"], reason["message"], next_step):
            assert escape(value) in html, value


def test_a_next_step_names_the_forms_fields_by_their_labels():
    labels = {"days_supply": "Days' supply", "checklist_completed": "Counseling checklist completed"}
    text = "Send `days_supply` of at most 28 and `counseling.checklist_completed: true`; `strength_mg` is fine."
    assert with_labels(text, labels) == (
        "Send “Days' supply” of at most 28 and “Counseling checklist completed” checked; `strength_mg` is fine."
    )
    assert with_labels(text, None) == text


def test_a_portal_dispense_approval_is_recorded_as_the_api_records_one(world, portal, pharmacist, runtime):
    _patient, auth = approved_authorization(world)
    portal.sign_in("pharm@example.org")
    form = {
        "authorization_number": auth["authorization_number"],
        "rems_patient_id": auth["rems_patient_id"],
        "days_supply": "28",
        "quantity": "28",
        "medication_guide_provided": "y",
        "checklist_completed": "y",
    }
    page = portal.post("/pharmacy/check", form, token_from="/pharmacy")
    assert ">Approved</h2>" in page.get_data(as_text=True)
    from_portal = _recorded(runtime)
    _twin, auth2 = approved_authorization(world)
    api = dispense(world, auth2["authorization_number"], auth2["rems_patient_id"], token=pharmacist)
    assert api.json["decision"] == "approved"
    from_api = _recorded(runtime)
    for (row, _entry), other in ((from_portal, from_api[0]), (from_api, from_portal[0])):
        assert decisions.replay(runtime.uow(), runtime.program, row.audit_seq).matches
        assert (row.kind, row.outcome, row.reasons, row.program_version) == (
            other.kind,
            other.outcome,
            other.reasons,
            other.program_version,
        )
        assert set(row.snapshot) == set(other.snapshot)
    assert from_portal[1].action == from_api[1].action and from_portal[1].outcome == from_api[1].outcome == "approved"
    assert set(from_portal[1].details) == set(from_api[1].details)
    assert from_portal[0].actor_user_id == from_api[0].actor_user_id


def test_a_portal_authorization_is_the_apis_decision(world, portal, runtime):
    doc = person(world.runtime, "prescriber", "doc@example.org", prescriber_id=world.prescriber.id)
    patient = ready_patient(world, ADULT_MALE)
    portal.sign_in("doc@example.org")
    form = {"auth-days_supply": "28", "auth-quantity": "28", "auth-strength_mg": "25"}  # not counseled
    page = portal.post(f"/prescriber/patients/{patient['id']}/authorizations", form, token_from="/prescriber")
    assert page.status_code == 200 and ">Denied</h2>" in page.get_data(as_text=True)
    from_portal = _recorded(runtime)
    api = authorize(
        world,
        patient,
        token=doc,
        prescriber_survey={"counseled_on_risks": False, "contraception_confirmed": False},
    )
    assert api.json["decision"] == "denied"
    _same_decision(runtime, from_portal, _recorded(runtime))
    approved = portal.post(
        f"/prescriber/patients/{patient['id']}/authorizations",
        {**form, "auth-counseled_on_risks": "y", "auth-contraception_confirmed": "y"},
        token_from="/prescriber",
    )
    html = approved.get_data(as_text=True)
    assert ">Approved</h2>" in html and 'id="authorization-number"' in html
    row, _entry = _recorded(runtime)
    assert row.outcome == "approved" and decisions.replay(runtime.uow(), runtime.program, row.audit_seq).matches


def test_form_errors_sit_next_to_their_field_with_the_values_kept(world, portal, pharmacist, runtime):
    portal.sign_in("pharm@example.org")
    r = portal.post(
        "/pharmacy/check",
        {"authorization_number": "AZ-1", "rems_patient_id": "", "days_supply": "400", "quantity": "x"},
        token_from="/pharmacy",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'id="rems_patient_id-error"' in html and "Enter the REMS patient ID." in html
    assert 'id="quantity-error"' in html
    assert 'value="AZ-1"' in html and 'value="400"' in html


REQUEST_KEY = re.compile(r'name="request_key"[^>]*value="([0-9a-f]{32})"')


def test_a_decision_form_sent_twice_is_decided_once(world, portal, pharmacist, runtime):
    """A double click or the browser's resend: the same rendering of the form gets the first decision back."""
    _patient, auth = approved_authorization(world)
    portal.sign_in("pharm@example.org")
    home = portal.get("/pharmacy").get_data(as_text=True)
    form = {
        "csrf_token": CSRF.search(home).group(1),
        "request_key": REQUEST_KEY.search(home).group(1),
        "authorization_number": auth["authorization_number"],
        "rems_patient_id": auth["rems_patient_id"],
        "days_supply": "28",
        "quantity": "28",
        "medication_guide_provided": "y",
        "checklist_completed": "y",
    }
    first = portal.post("/pharmacy/check", form).get_data(as_text=True)
    with runtime.uow() as uow:
        count = len(uow.session.exec(select(DecisionRecord)).all())
    again = portal.post("/pharmacy/check", form).get_data(as_text=True)
    number = re.search(r'id="confirmation-number">([^<]+)<', first).group(1)
    assert ">Approved</h2>" in again and f'id="confirmation-number">{number}<' in again
    with runtime.uow() as uow:
        assert len(uow.session.exec(select(DecisionRecord)).all()) == count
    # The page that answered carries a new key: the next check is a new decision.
    assert REQUEST_KEY.search(again).group(1) != form["request_key"]


def test_an_unknown_portal_address_gets_the_portal_page_and_the_api_keeps_its_json(client):
    page = client.get("/pharmacy/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Not found" in page.get_data(as_text=True)
    assert client.delete("/login").status_code == 405
    api = client.get("/api/v1/no-such-resource")
    assert api.status_code == 404 and api.json["code"] == 404
    assert client.get("/").headers["Location"] == "/login"
