"""Test helpers shared by test modules: an API client that speaks bearer tokens,
ready-made participants, and the patient, authorization and dispense steps of the
API scenarios (test modules import helpers from here, never from one another)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rems_service.db.audit_chain import iter_entries
from rems_service.services import pharmacies, prescribers, users
from workflows.actors import SYSTEM
from workflows.participants import PHARMACY_ATTESTATIONS, PRESCRIBER_ATTESTATIONS
from workflows.patients import RiskCategory
from workflows.surveys import required_questions

#: Valid NPIs (check digit per the CMS algorithm).
VALID_NPIS = ("1234567893", "1245319599", "1679576722", "1003000126", "1497758544")
PRESCRIBER_ATTESTED = dict.fromkeys(PRESCRIBER_ATTESTATIONS, True)
PHARMACY_ATTESTED = dict.fromkeys(PHARMACY_ATTESTATIONS, True)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


#: When the test pharmacists completed their REMS training.
TRAINED = utc(2020, 1, 2)


@dataclass
class Api:
    """The Flask test client with a token and an optional sandbox clock."""

    client: Any
    token: str | None = None
    now: datetime | None = None

    def as_(self, token: str | None) -> Api:
        return Api(self.client, token, self.now)

    def at(self, now: datetime) -> Api:
        return Api(self.client, self.token, now)

    def request(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None, **kwargs: Any):
        sent = dict(headers or {})
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        if self.now is not None:
            sent.setdefault("X-Rems-Now", self.now.isoformat())
        if json is not None:
            kwargs["json"] = json
        return self.client.open(path, method=method, headers=sent, **kwargs)

    def get(self, path: str, **kw: Any):
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any):
        return self.request("POST", path, json=json, **kw)


def make_user(runtime: Any, role: str, **kwargs: Any) -> tuple[Any, str]:
    return users.create_user(runtime.uow(), SYSTEM, datetime.now(UTC), name=f"test {role}", role=role, **kwargs)


def make_prescriber(runtime: Any, npi: str = VALID_NPIS[0], certified: bool = True, now: datetime | None = None):
    now = now or datetime.now(UTC)
    row = prescribers.register(runtime.uow(), SYSTEM, now, npi=npi, first_name="Ada", last_name="Osler")
    if certified:
        row = prescribers.certify(runtime.uow(), SYSTEM, now, row.id, PRESCRIBER_ATTESTED)
    return row


def make_pharmacy(runtime: Any, ncpdp_id: str = "1234567", certified: bool = True, now: datetime | None = None):
    now = now or datetime.now(UTC)
    row = pharmacies.register(
        runtime.uow(),
        SYSTEM,
        now,
        ncpdp_id=ncpdp_id,
        name="Main St Pharmacy",
        representative_name="Rita Rep",
        representative_email="rita@example.org",
    )
    if certified:
        row = pharmacies.certify(runtime.uow(), SYSTEM, now, runtime.program, row.id, PHARMACY_ATTESTED)
    return row


def tamper_with_audit(session: Any) -> None:
    """Switch off the audit table's append-only triggers for this transaction, as
    only a superuser could (PostgreSQL: ordinary triggers off for the transaction;
    SQLite: the triggers dropped from this test's own database file)."""
    from sqlalchemy import text

    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        session.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_update"))
        session.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_delete"))


def audit_count(runtime: Any) -> int:
    """How many audit entries the chain holds."""
    with runtime.uow() as uow:
        return sum(1 for _ in iter_entries(uow.session))


# The API scenarios: patients enrolled, tested, surveyed, authorized and dispensed at NOW.

NOW = utc(2026, 6, 15, 12)

ADULT_MALE = {
    "first_name": "Zed",
    "last_name": "Quinlan",
    "date_of_birth": "1960-04-02",
    "risk_category": "MALE_ADULT",
    "ppaf_signed": True,
    "counseling_completed": True,
}
ADULT_FRP = {
    **ADULT_MALE,
    "first_name": "Yara",
    "last_name": "Okonkwo-Pemberton",
    "date_of_birth": "1990-03-03",
    "risk_category": "FRP_ADULT",
    "menstrual_cycle": "regular",
}


def enroll(world, body, token=None, at=NOW):
    return world.api.as_(token or world.prescriber_token).at(at).post("/api/v1/patients", json=body)


def enrolled(world, body=ADULT_FRP):
    r = enroll(world, body)
    assert r.status_code == 201, r.json
    return r.json


def add_test(world, pid, collected_at, result="negative", sensitivity=25, at=NOW, token=None):
    return (
        world.api.as_(token or world.prescriber_token)
        .at(at)
        .post(
            f"/api/v1/patients/{pid}/pregnancy-tests",
            json={"collected_at": collected_at.isoformat(), "result": result, "sensitivity_miu_ml": sensitivity},
        )
    )


def complete_answers(category: str, **flags: bool) -> dict[str, bool]:
    """Survey answers to every question ``category`` must answer (R-SURV-3): ``False`` unless given."""
    return {**dict.fromkeys(required_questions(RiskCategory(category)), False), **flags}


def add_survey(world, pid, answers, completed_at=NOW - timedelta(hours=1), at=NOW):
    return (
        world.api.as_(world.prescriber_token)
        .at(at)
        .post(f"/api/v1/patients/{pid}/surveys", json={"completed_at": completed_at.isoformat(), "answers": answers})
    )


AUTH_BODY = {
    "days_supply": 28,
    "quantity": 28,
    "strength_mg": 25,
    "prescriber_survey": {"counseled_on_risks": True, "contraception_confirmed": True},
}
COUNSELED = {"medication_guide_provided": True, "checklist_completed": True}


def ready_patient(world, body=ADULT_MALE):
    """An enrolled patient who meets every authorization rule at NOW."""
    patient = enrolled(world, body)
    if body["risk_category"].startswith("FRP"):
        assert add_test(world, patient["id"], NOW - timedelta(days=12), at=NOW - timedelta(days=11)).status_code == 201
        assert add_test(world, patient["id"], NOW - timedelta(hours=3)).status_code == 201
    assert add_survey(world, patient["id"], complete_answers(body["risk_category"])).status_code == 201
    return patient


def authorize(world, patient, at=NOW, token=None, headers=None, **changes):
    body = {**AUTH_BODY, "patient_id": patient["id"], **changes}
    return (
        world.api.as_(token or world.prescriber_token).at(at).post("/api/v1/authorizations", json=body, headers=headers)
    )


def dispense(world, auth_number, rems_patient_id, at=NOW, token=None, headers=None, **changes):
    body = {
        "authorization_number": auth_number,
        "rems_patient_id": rems_patient_id,
        "days_supply": 28,
        "quantity": 28,
        "counseling": COUNSELED,
        **changes,
    }
    return world.api.as_(token or world.pharmacist_token).at(at).post("/api/v1/dispenses", json=body, headers=headers)


def approved_authorization(world, body=ADULT_MALE, at=NOW):
    patient = ready_patient(world, body)
    r = authorize(world, patient, at=at)
    assert r.status_code == 201 and r.json["decision"] == "approved", r.json
    return patient, r.json


def signature_ok(secret: str, received: Any) -> bool:
    """Whether a webhook delivery the test receiver got carries the right HMAC signature."""
    expected = "sha256=" + hmac.new(secret.encode(), received.raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers["X-Rems-Signature"])


@dataclass
class World:
    """A small program: two prescribers and two pharmacies, each with a user, plus staff."""

    api: Api
    runtime: Any
    admin: str
    auditor: str
    prescriber: Any
    prescriber_token: str
    other_prescriber: Any
    other_prescriber_token: str
    pharmacy: Any
    pharmacist_token: str
    other_pharmacy: Any
    other_pharmacist_token: str


def make_world(api: Api, runtime: Any) -> World:
    """Two certified prescribers and two certified pharmacies, each with a user (pharmacists
    trained), an admin and an auditor: the small program most API and interop tests start from."""
    prescriber = make_prescriber(runtime, "1234567893")
    other = make_prescriber(runtime, "1245319599")
    pharmacy = make_pharmacy(runtime, "1234567")
    other_pharmacy = make_pharmacy(runtime, "7654321")
    return World(
        api=api,
        runtime=runtime,
        admin=make_user(runtime, "admin")[1],
        auditor=make_user(runtime, "auditor")[1],
        prescriber=prescriber,
        prescriber_token=make_user(runtime, "prescriber", prescriber_id=prescriber.id)[1],
        other_prescriber=other,
        other_prescriber_token=make_user(runtime, "prescriber", prescriber_id=other.id)[1],
        pharmacy=pharmacy,
        pharmacist_token=make_user(runtime, "pharmacist", pharmacy_id=pharmacy.id, training_completed_at=TRAINED)[1],
        other_pharmacy=other_pharmacy,
        other_pharmacist_token=make_user(
            runtime, "pharmacist", pharmacy_id=other_pharmacy.id, training_completed_at=TRAINED
        )[1],
    )
