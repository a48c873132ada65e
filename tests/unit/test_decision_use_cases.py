"""The authorization and dispense decision use cases, run against the in-memory fakes.

No database, no HTTP, no Flask app: each test seeds a ``FakeStore``, calls
``authorizations.request`` or ``dispenses.request`` with a unit-of-work
factory over it and the real program definition, and checks the answer and
what was (or was not) committed: rows, decision records, audit entries and
outbox events. Every test names the rule it covers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from config.programs import load_program
from rems_service.db.models import Authorization, Dispense, IdempotencyKey, Patient, TreatmentCourse
from rems_service.db.repository import AlreadyHeld, ClinicalInputs, course_facts
from rems_service.services import authorizations, dispenses
from rems_service.services.authorizations import AuthorizationCommand
from rems_service.services.decisions import DecisionAnswer
from rems_service.services.errors import Conflict, Invalid, NotFound, Unavailable
from tests.helpers import utc
from tests.unit.fakes import FakeStore, FakeUnitOfWork, PharmacyRecord
from workflows.actors import Actor, UserRole
from workflows.advisories import LabValue
from workflows.audit import digest
from workflows.authorizations import AuthorizationLifecycle, AuthorizationStatus
from workflows.clinical_params import Regimen
from workflows.courses import CourseStatus
from workflows.dispenses import DispenseStatus
from workflows.participants import PharmacyStatus, PrescriberStatus
from workflows.patients import MenstrualCycle, PatientStatus, RiskCategory
from workflows.program import Program
from workflows.replay import replay
from workflows.testing import PregnancyResult, PregnancyTest

NOW = utc(2026, 6, 15, 12, 0)
PROGRAM = load_program()
VERSION = PROGRAM.in_force(NOW)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"

PRESCRIBER_ID, OTHER_PRESCRIBER_ID = uuid.uuid4(), uuid.uuid4()
PRESCRIBER = Actor(uuid.uuid4(), UserRole.PRESCRIBER.value, prescriber_id=PRESCRIBER_ID)
PHARMACY_ID, RIVAL_PHARMACY_ID, THIRD_PHARMACY_ID = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PHARMACIST = Actor(uuid.uuid4(), UserRole.PHARMACIST.value, pharmacy_id=PHARMACY_ID)
RIVAL = Actor(uuid.uuid4(), UserRole.PHARMACIST.value, pharmacy_id=RIVAL_PHARMACY_ID)
THIRD = Actor(uuid.uuid4(), UserRole.PHARMACIST.value, pharmacy_id=THIRD_PHARMACY_ID)
REMS_PATIENT_ID = "RP-0001"


def neg(at) -> PregnancyTest:
    return PregnancyTest(at, PregnancyResult.NEGATIVE, 25)


def pos(at) -> PregnancyTest:
    return PregnancyTest(at, PregnancyResult.POSITIVE, 25)


# -- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    """A store with a certified prescriber, three certified pharmacies with trained pharmacists,
    and one patient; ``uow`` is the unit-of-work factory the use cases take."""

    store: FakeStore
    patient: Patient
    authorization: Authorization | None = None

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store)

    def mine(self, rows: list[Any], actor: Actor) -> list[Any]:
        """The decision records or audit entries made by ``actor``."""
        return [r for r in rows if r.actor_user_id == actor.user_id]

    def recorded(self) -> tuple[int, int, int, int, int, int]:
        """How many decisions, audit entries, events, authorizations, dispenses and keys are stored."""
        s = self.store
        return (
            len(s.decisions),
            len(s.audit),
            len(s.events),
            len(s.all(Authorization)),
            len(s.all(Dispense)),
            len(s.all(IdempotencyKey)),
        )


def make_world(
    category: RiskCategory = RiskCategory.FRP_ADULT,
    *,
    status: PatientStatus = PatientStatus.ON_THERAPY,
    therapy_days: int | None = 60,
    tests: tuple[PregnancyTest, ...] | None = None,
    survey_age: timedelta | None = 5 * DAY,
) -> World:
    """A patient of ``category`` ready for an authorization and (with ``issue``) a dispense:
    on therapy for ``therapy_days``, an FRP patient with regular cycles tested 3 days ago,
    a patient survey ``survey_age`` old."""
    store = FakeStore()
    store.prescribers[PRESCRIBER_ID] = PrescriberStatus.CERTIFIED
    store.prescribers[OTHER_PRESCRIBER_ID] = PrescriberStatus.CERTIFIED
    for actor in (PHARMACIST, RIVAL, THIRD):
        assert actor.pharmacy_id is not None and actor.user_id is not None
        store.pharmacies[actor.pharmacy_id] = PharmacyRecord(PharmacyStatus.CERTIFIED, NOW + 365 * DAY)
        store.pharmacist_training[actor.user_id] = NOW - 100 * DAY
    patient = store.put(
        Patient(
            rems_patient_id=REMS_PATIENT_ID,
            prescriber_id=PRESCRIBER_ID,
            first_name="Pat",
            last_name="Doe",
            date_of_birth=NOW.date() - 30 * 365 * DAY,
            risk_category=category,
            menstrual_cycle=MenstrualCycle.REGULAR if category.is_frp else None,
            status=status,
            status_changed_at=NOW - 90 * DAY,
            therapy_started_at=NOW - therapy_days * DAY if therapy_days is not None else None,
            enrolled_at=NOW - 90 * DAY,
            created_at=NOW - 90 * DAY,
        )
    )
    if tests is None:
        tests = (neg(NOW - 3 * DAY),) if category.is_frp else ()
    for test in tests:
        store.add_test(patient.id, test)
    if survey_age is not None:
        store.add_survey(patient.id, NOW - survey_age)
    return World(store, patient)


def issue(
    world: World,
    *,
    issued_at=None,
    status: AuthorizationStatus = AuthorizationStatus.ISSUED,
    days_supply: int = 28,
    quantity: int = 28,
    prior_days_ago: int | None = 25,
) -> Authorization:
    """Store an authorization for the world's patient (and, unless ``prior_days_ago`` is
    None, a previous 28-day dispense completed that many days ago)."""
    store, patient = world.store, world.patient
    issued_at = issued_at or NOW - DAY
    valid_days = (
        VERSION.authorization_valid_days_frp if patient.risk_category.is_frp else VERSION.authorization_valid_days_other
    )
    auth = store.put(
        Authorization(
            number="RA-0000A-0000B-0000C",
            patient_id=patient.id,
            prescriber_id=patient.prescriber_id,
            rems_patient_id=patient.rems_patient_id,
            risk_category=patient.risk_category,
            days_supply=days_supply,
            quantity=quantity,
            strength_mg=10.0,
            status=status,
            issued_at=issued_at,
            expires_at=issued_at + valid_days * DAY,
            status_changed_at=issued_at,
            decision_id=uuid.uuid4(),
        )
    )
    if prior_days_ago is not None:
        done_at = NOW - prior_days_ago * DAY
        prior_auth = store.put(
            Authorization(
                number="RA-1111A-1111B-1111C",
                patient_id=patient.id,
                prescriber_id=patient.prescriber_id,
                rems_patient_id=patient.rems_patient_id,
                risk_category=patient.risk_category,
                days_supply=28,
                quantity=28,
                strength_mg=10.0,
                status=AuthorizationStatus.DISPENSED,
                issued_at=done_at - 2 * DAY,
                expires_at=done_at + 5 * DAY,
                status_changed_at=done_at,
                decision_id=uuid.uuid4(),
            )
        )
        store.put(
            Dispense(
                confirmation_number="RC-1111A-1111B-1111C",
                authorization_id=prior_auth.id,
                pharmacy_id=PHARMACY_ID,
                pharmacist_user_id=PHARMACIST.user_id,
                patient_id=patient.id,
                rems_patient_id=patient.rems_patient_id,
                days_supply=28,
                quantity=28,
                status=DispenseStatus.DISPENSED,
                confirmed_at=done_at - HOUR,
                confirmation_expires_at=done_at + 23 * HOUR,
                dispensed_at=done_at,
                status_changed_at=done_at,
                decision_id=uuid.uuid4(),
            )
        )
    world.authorization = auth
    return auth


def confirmation_on(world: World, auth: Authorization, *, expires_at, pharmacy: Actor = RIVAL) -> Dispense:
    """Store a confirmation (stored status ``confirmed``) of ``auth`` by ``pharmacy``."""
    auth.status = AuthorizationStatus.CONFIRMED
    return world.store.put(
        Dispense(
            confirmation_number="RC-2222A-2222B-2222C",
            authorization_id=auth.id,
            pharmacy_id=pharmacy.pharmacy_id,
            pharmacist_user_id=pharmacy.user_id,
            patient_id=auth.patient_id,
            rems_patient_id=auth.rems_patient_id,
            days_supply=auth.days_supply,
            quantity=auth.quantity,
            status=DispenseStatus.CONFIRMED,
            confirmed_at=expires_at - VERSION.confirmation_valid_hours * HOUR,
            confirmation_expires_at=expires_at,
            status_changed_at=expires_at - VERSION.confirmation_valid_hours * HOUR,
            decision_id=uuid.uuid4(),
        )
    )


# -- requests ----------------------------------------------------------------------------------


def auth_body(world: World, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": world.patient.id,
        "days_supply": 28,
        "quantity": 28,
        "strength_mg": 10.0,
        "prescriber_survey": {"counseled_on_risks": True, "contraception_confirmed": True},
    }
    return {**body, **changes}


def ask_authorization(
    world: World, actor: Actor = PRESCRIBER, now=NOW, key: str | None = None, program: Program = PROGRAM, **changes: Any
):
    body = auth_body(world, **changes)
    return authorizations.request(
        world.uow,
        actor,
        now,
        program,
        AuthorizationCommand.of(**body),
        idempotency_key=key,
        request_body={**body, "patient_id": str(body["patient_id"])},
    )


def dispense_body(world: World, **changes: Any) -> dict[str, Any]:
    assert world.authorization is not None
    body: dict[str, Any] = {
        "authorization_number": world.authorization.number,
        "rems_patient_id": world.patient.rems_patient_id,
        "days_supply": 28,
        "quantity": 28,
        "counseling": {"medication_guide_provided": True, "checklist_completed": True},
    }
    return {**body, **changes}


def ask_dispense(
    world: World, actor: Actor = PHARMACIST, now=NOW, key: str | None = None, program: Program = PROGRAM, **changes: Any
):
    body = dispense_body(world, **changes)
    return dispenses.request(
        world.uow, actor, now, program, dispenses.command(**body), idempotency_key=key, request_body=body
    )


def pairs(answer: DecisionAnswer) -> set[tuple[str, str]]:
    assert answer.result is not None
    return {(r["code"], r["rule"]) for r in answer.result.reasons}


def check_recorded(world: World, answer: DecisionAnswer, actor: Actor, kind: str, event: str) -> None:
    """The answer's decision is stored once, with its audit entry and outbox event under the
    same decision id, and the body is the JSON of ``result.body()`` (R-AUD-1)."""
    result = answer.result
    assert result is not None and not answer.replayed
    assert json.loads(answer.body) == result.body()
    (decision,) = world.mine(world.store.decisions, actor)
    (entry,) = world.mine(world.store.audit, actor)
    assert decision.id == result.id and decision.kind == kind and decision.outcome == result.decision
    assert decision.reasons == [dict(r) for r in result.reasons] == entry.reasons
    assert decision.program_version == VERSION.version == entry.program_version
    assert decision.audit_seq == entry.seq == result.audit_seq
    assert entry.action == f"{kind}.decided" and entry.outcome == result.decision
    assert entry.details["decision_id"] == str(result.id)
    assert entry.inputs_digest == digest(decision.snapshot)
    assert entry.effective_at == NOW == decision.evaluated_at
    # The stored snapshot decides the same way again.
    replayed = replay(kind, decision.snapshot, VERSION, decision.evaluated_at)
    assert replayed.outcome == result.decision
    assert [r.as_dict() for r in replayed.reasons] == decision.reasons
    events = [e for e in world.store.events if e.payload.get("decision_id") == str(result.id)]
    assert [e.type for e in events] == [event]
    assert events[0].payload["outcome"] == result.decision


# == authorization ===============================================================================


@pytest.mark.parametrize("category", list(RiskCategory), ids=lambda c: c.value)
def test_authorization_approved_for_a_ready_patient_of_each_category(category):
    """R-AUTH-1, R-AUTH-3: a ready patient is approved; an ``issued`` authorization is stored,
    valid for the program's days of the category, with its decision, audit entry and event."""
    world = make_world(category)
    answer = ask_authorization(world)

    assert answer.result is not None and answer.result.approved and answer.result.reasons == ()
    check_recorded(world, answer, PRESCRIBER, "authorization", "authorization.issued")
    (row,) = world.store.all(Authorization)
    valid_days = VERSION.authorization_valid_days_frp if category.is_frp else VERSION.authorization_valid_days_other
    assert row.status is AuthorizationStatus.ISSUED
    assert row.issued_at == NOW and row.expires_at == NOW + valid_days * DAY == answer.result.expires_at
    assert row.number == answer.result.authorization_number and re.fullmatch(r"RA(-[0-9A-Z]{5}){3}", row.number)
    assert row.decision_id == answer.result.id
    assert (row.patient_id, row.prescriber_id, row.rems_patient_id) == (
        world.patient.id,
        PRESCRIBER_ID,
        REMS_PATIENT_ID,
    )
    assert (row.risk_category, row.days_supply, row.quantity, row.strength_mg) == (category, 28, 28, 10.0)
    (entry,) = world.store.audit
    assert entry.details["authorization_number"] == row.number


def test_authorization_approved_before_therapy_with_both_initial_tests():
    """R-PREG-1: an FRP patient's first authorization needs a negative test 10-14 days before
    and one within the 24 hours before; with both it is approved."""
    first_days = VERSION.initial_test_1_window_days[0]
    world = make_world(
        status=PatientStatus.ENROLLED,
        therapy_days=None,
        tests=(neg(NOW - first_days * DAY), neg(NOW - 2 * HOUR)),
    )
    answer = ask_authorization(world)
    assert answer.result is not None and answer.result.approved
    (row,) = world.store.all(Authorization)
    assert row.expires_at == NOW + VERSION.authorization_valid_days_frp * DAY


FRP, MALE = RiskCategory.FRP_ADULT, RiskCategory.MALE_ADULT
SURVEY_OLD = (VERSION.survey_interval_days_default + 1) * DAY
STALE_TEST = (VERSION.monitoring.regular_interval_days + 1) * DAY


@dataclass(frozen=True)
class Case:
    """One way to be denied: how the world differs from a ready one, and the reasons expected."""

    id: str
    expected: frozenset[tuple[str, str]]
    world: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[World], None] | None = None


def case(id: str, expected: set[tuple[str, str]], setup=None, world=None, **request: Any) -> Case:
    return Case(id, frozenset(expected), world or {}, request, setup)


def _prescriber(status):
    def setup(w: World) -> None:
        if status is None:
            del w.store.prescribers[PRESCRIBER_ID]
        else:
            w.store.prescribers[PRESCRIBER_ID] = status

    return setup


def _other_prescribers_patient(w: World) -> None:
    w.patient.prescriber_id = OTHER_PRESCRIBER_ID


def _positive_newest(w: World) -> None:
    w.store.add_test(w.patient.id, pos(NOW - DAY))


def _course(status: CourseStatus = CourseStatus.ACTIVE, platelets: float = 200.0):
    """CLINICAL_RULES.md: a maintenance course at 10 mg with a fresh CBC (platelets as given)."""

    def setup(w: World) -> None:
        row = TreatmentCourse(
            patient_id=w.patient.id,
            prescriber_id=w.patient.prescriber_id,
            regimen=Regimen.MAINTENANCE,
            start_date=(NOW - 40 * DAY).date(),
            dose_mg=10.0,
            dose_every_days=1,
            days_on=28,
            cycle_length_days=28,
            thromboprophylaxis="aspirin",
            on_dialysis=False,
            status=status,
            status_changed_at=NOW - DAY,
            status_reason_code=None if status is CourseStatus.ACTIVE else "hematologic",
            holds=[] if status is CourseStatus.ACTIVE else [{"start": (NOW - DAY).isoformat(), "end": None}],
            created_at=NOW - 40 * DAY,
        )
        labs = (
            LabValue("751-8", 2.0, "10*3/uL", NOW - 2 * DAY),
            LabValue("777-3", platelets, "10*3/uL", NOW - 2 * DAY),
        )
        w.store.clinical[w.patient.id] = ClinicalInputs(course_facts(row), labs)

    return setup


AUTHORIZATION_CASES = [
    case("prescriber-suspended", {("PRESCRIBER_NOT_CERTIFIED", "R-PRES-1")}, _prescriber(PrescriberStatus.SUSPENDED)),
    case("prescriber-pending", {("PRESCRIBER_NOT_CERTIFIED", "R-PRES-1")}, _prescriber(PrescriberStatus.PENDING)),
    case("prescriber-unknown", {("PRESCRIBER_NOT_CERTIFIED", "R-PRES-1")}, _prescriber(None)),
    case(
        "days-supply-over-max",
        {("DAYS_SUPPLY_EXCEEDED", "R-AUTH-2")},
        days_supply=VERSION.max_days_supply + 1,
        quantity=VERSION.max_days_supply + 1,
    ),
    case(
        "quantity-over-capsules-per-day",
        {("QUANTITY_EXCEEDED", "R-AUTH-5")},
        days_supply=21,
        quantity=21 * VERSION.max_capsules_per_day + 1,
    ),
    case("other-prescribers-patient", {("PATIENT_PRESCRIBER_MISMATCH", "R-AUTH-1")}, _other_prescribers_patient),
    case(
        "other-prescribers-patient-reveals-nothing-else",
        {("PATIENT_PRESCRIBER_MISMATCH", "R-AUTH-1")},
        _other_prescribers_patient,
        world={"status": PatientStatus.HALTED, "tests": (), "survey_age": None},
    ),
    *(
        case(f"patient-{s.value}", {("PATIENT_NOT_ELIGIBLE", "R-PAT-2")}, world={"status": s})
        for s in (PatientStatus.HALTED, PatientStatus.NEEDS_INTERVENTION, PatientStatus.DISCONTINUED)
    ),
    case(
        "not-counseled",
        {("PRESCRIBER_SURVEY_INCOMPLETE", "R-PRES-2")},
        prescriber_survey={"counseled_on_risks": False, "contraception_confirmed": True},
    ),
    case(
        "frp-contraception-unconfirmed",
        {("PRESCRIBER_SURVEY_INCOMPLETE", "R-CONTRA-1")},
        prescriber_survey={"counseled_on_risks": True},
    ),
    case(
        "male-condoms-unconfirmed",
        {("PRESCRIBER_SURVEY_INCOMPLETE", "R-CONTRA-2")},
        world={"category": MALE},
        prescriber_survey={"counseled_on_risks": True, "contraception_confirmed": False},
    ),
    case(
        "first-authorization-no-test",
        {("PREGNANCY_TEST_MISSING", "R-PREG-1")},
        world={"status": PatientStatus.ENROLLED, "therapy_days": None, "tests": ()},
    ),
    case(
        "first-authorization-first-test-out-of-window",
        {("PREGNANCY_TEST_OUT_OF_WINDOW", "R-PREG-1")},
        world={"status": PatientStatus.ENROLLED, "therapy_days": None, "tests": (neg(NOW - 2 * HOUR),)},
    ),
    case(
        "first-authorization-second-test-out-of-window",
        {("PREGNANCY_TEST_OUT_OF_WINDOW", "R-PREG-1")},
        world={
            "status": PatientStatus.ENROLLED,
            "therapy_days": None,
            "tests": (neg(NOW - VERSION.initial_test_1_window_days[0] * DAY),),
        },
    ),
    case("on-therapy-no-test", {("PREGNANCY_TEST_MISSING", "R-PREG-3")}, world={"tests": ()}),
    case("on-therapy-test-stale", {("PREGNANCY_TEST_STALE", "R-PREG-3")}, world={"tests": (neg(NOW - STALE_TEST),)}),
    case("newest-test-positive", {("PREGNANCY_TEST_POSITIVE", "R-PREG-4")}, _positive_newest),
    case("survey-overdue", {("PATIENT_SURVEY_OVERDUE", "R-SURV-1")}, world={"survey_age": SURVEY_OLD}),
    case("survey-never-done", {("PATIENT_SURVEY_OVERDUE", "R-SURV-1")}, world={"survey_age": None}),
    case("treatment-on-hold", {("TREATMENT_ON_HOLD", "R-CYCLE-3")}, _course(CourseStatus.ON_HOLD)),
    case("critical-unacknowledged", {("CLINICAL_ALERT_UNACKNOWLEDGED", "R-ACK-1")}, _course(platelets=25.0)),
]


def world_for(c: Case) -> World:
    world = make_world(**c.world)
    if c.setup is not None:
        c.setup(world)
    return world


@pytest.mark.parametrize("c", AUTHORIZATION_CASES, ids=lambda c: c.id)
def test_authorization_denied_with_each_reason(c: Case):
    """R-AUTH-1 (and the rule each case names): one failing rule denies the authorization with
    exactly its code and rule ID; no authorization is stored; the denial is recorded."""
    world = world_for(c)
    answer = ask_authorization(world, **c.request)

    assert answer.result is not None and answer.result.decision == "denied"
    assert pairs(answer) == c.expected
    assert all(r["message"] for r in answer.result.reasons)
    assert answer.result.authorization_number is None and answer.result.expires_at is None
    assert world.store.all(Authorization) == []
    check_recorded(world, answer, PRESCRIBER, "authorization", "authorization.denied")


def test_authorization_denial_lists_every_failing_reason():
    """R-AUTH-1: a decision lists every failing reason, not only the first."""
    world = make_world(tests=(neg(NOW - STALE_TEST),), survey_age=SURVEY_OLD)
    world.store.prescribers[PRESCRIBER_ID] = PrescriberStatus.SUSPENDED
    answer = ask_authorization(
        world,
        days_supply=VERSION.max_days_supply + 1,
        prescriber_survey={"counseled_on_risks": False, "contraception_confirmed": None},
    )
    assert pairs(answer) == {
        ("PRESCRIBER_NOT_CERTIFIED", "R-PRES-1"),
        ("DAYS_SUPPLY_EXCEEDED", "R-AUTH-2"),
        ("PRESCRIBER_SURVEY_INCOMPLETE", "R-PRES-2"),
        ("PRESCRIBER_SURVEY_INCOMPLETE", "R-CONTRA-1"),
        ("PREGNANCY_TEST_STALE", "R-PREG-3"),
        ("PATIENT_SURVEY_OVERDUE", "R-SURV-1"),
    }
    assert world.store.all(Authorization) == []
    check_recorded(world, answer, PRESCRIBER, "authorization", "authorization.denied")


def test_authorization_for_an_unknown_patient_is_not_found_and_records_nothing():
    """R-AUTH-1: an unknown patient is a 404, not a decision; nothing is recorded."""
    world = make_world()
    before = world.recorded()
    with pytest.raises(NotFound) as caught:
        ask_authorization(world, patient_id=uuid.uuid4(), key="k-unknown")
    assert caught.value.status == 404
    assert world.recorded() == before == (0, 0, 0, 0, 0, 0)


def test_authorization_without_a_program_in_force_is_unavailable_and_records_nothing():
    """Program definition (R-AUTH-1): before the first version's ``effective_from`` nothing is
    decided: 503, and no decision, audit entry, event, authorization or key."""
    world = make_world()
    before_program = utc(2019, 12, 31, 23, 59)
    with pytest.raises(Unavailable) as caught:
        ask_authorization(world, now=before_program, key="k-early")
    assert caught.value.status == 503
    assert world.recorded() == (0, 0, 0, 0, 0, 0)


# == dispense ====================================================================================


def dispense_world(category: RiskCategory = FRP, **kw: Any) -> World:
    world = make_world(category, **kw)
    issue(world)
    return world


def holders(world: World, auth: Authorization) -> list[Dispense]:
    """Dispenses holding ``auth`` (stored ``confirmed`` or ``dispensed``): R-DISP-5 allows one."""
    return [
        d
        for d in world.store.all(Dispense)
        if d.authorization_id == auth.id and d.status in (DispenseStatus.CONFIRMED, DispenseStatus.DISPENSED)
    ]


@pytest.mark.parametrize("category", [FRP, MALE, RiskCategory.FNRP_ADULT], ids=lambda c: c.value)
def test_dispense_approved_stores_the_confirmation_and_confirms_the_authorization(category):
    """R-DISP-1, R-DISP-2: an approval stores a ``confirmed`` dispense valid for the program's
    hours and moves the authorization to ``confirmed``, recorded with one decision."""
    world = dispense_world(category)
    auth = world.authorization
    assert auth is not None
    answer = ask_dispense(world, days_supply=21, quantity=21)

    result = answer.result
    assert result is not None and result.approved and result.reasons == ()
    check_recorded(world, answer, PHARMACIST, "dispense", "dispense.approved")
    (row,) = [d for d in world.store.all(Dispense) if d.pharmacy_id == PHARMACY_ID and d.authorization_id == auth.id]
    assert row.status is DispenseStatus.CONFIRMED
    assert row.confirmed_at == NOW
    assert (
        row.confirmation_expires_at == NOW + VERSION.confirmation_valid_hours * HOUR == result.confirmation_expires_at
    )
    assert row.confirmation_number == result.confirmation_number and row.confirmation_number.startswith("RC-")
    assert (row.pharmacist_user_id, row.patient_id, row.rems_patient_id) == (
        PHARMACIST.user_id,
        world.patient.id,
        REMS_PATIENT_ID,
    )
    assert (row.days_supply, row.quantity, row.decision_id) == (21, 21, result.id)
    stored_auth = world.store.get(Authorization, auth.id)
    assert stored_auth.status is AuthorizationStatus.CONFIRMED and stored_auth.status_changed_at == NOW
    assert result.authorization_number == auth.number
    (entry,) = world.store.audit
    assert (entry.details["authorization_from_state"], entry.details["authorization_to_state"]) == (
        "issued",
        "confirmed",
    )
    assert holders(world, auth) == [row]


def test_dispense_after_a_lapsed_confirmation_settles_it_and_approves():
    """R-DISP-2: a confirmation past its hours no longer holds the authorization; the new
    approval records the lapse, and exactly one confirmation holds the authorization."""
    world = dispense_world()
    auth = world.authorization
    assert auth is not None
    old = confirmation_on(world, auth, expires_at=NOW - HOUR)
    answer = ask_dispense(world)

    assert answer.result is not None and answer.result.approved
    assert world.store.get(Dispense, old.id).status is DispenseStatus.LAPSED
    assert [e.action for e in world.store.audit] == ["dispense.lapsed", "dispense.decided"]
    (holder,) = holders(world, auth)
    assert holder.pharmacy_id == PHARMACY_ID and holder.confirmation_number == answer.result.confirmation_number


def _pharmacy(status=PharmacyStatus.CERTIFIED, until=NOW + 365 * DAY, unknown=False):
    def setup(w: World) -> None:
        assert PHARMACIST.pharmacy_id is not None
        if unknown:
            del w.store.pharmacies[PHARMACIST.pharmacy_id]
        else:
            w.store.pharmacies[PHARMACIST.pharmacy_id] = PharmacyRecord(status, until)

    return setup


def _training(at):
    def setup(w: World) -> None:
        assert PHARMACIST.user_id is not None
        w.store.pharmacist_training[PHARMACIST.user_id] = at

    return setup


def _authorization(**changes: Any):
    def setup(w: World) -> None:
        for name, value in changes.items():
            setattr(w.authorization, name, value)

    return setup


def _live_confirmation(w: World) -> None:
    assert w.authorization is not None
    confirmation_on(w, w.authorization, expires_at=NOW + HOUR)


def _patient(**changes: Any):
    def setup(w: World) -> None:
        for name, value in changes.items():
            setattr(w.patient, name, value)

    return setup


def _tests(*tests: PregnancyTest):
    def setup(w: World) -> None:
        w.store.pregnancy_tests[w.patient.id] = list(tests)

    return setup


def _prior_dispensed(days_ago: int):
    def setup(w: World) -> None:
        for d in w.store.all(Dispense):
            d.dispensed_at = NOW - days_ago * DAY

    return setup


EXPIRED_ISSUE = NOW - (VERSION.authorization_valid_days_frp + 1) * DAY
#: The prior 28-day supply was dispensed this many days ago: two days more than the program allows still remain.
EARLY_DAYS = 28 - VERSION.refill_max_remaining_days - 2

DISPENSE_CASES = [
    case("pharmacy-suspended", {("PHARMACY_NOT_CERTIFIED", "R-PHA-1")}, _pharmacy(PharmacyStatus.SUSPENDED)),
    case("pharmacy-unknown", {("PHARMACY_NOT_CERTIFIED", "R-PHA-1")}, _pharmacy(unknown=True)),
    case("pharmacy-certification-lapsed", {("PHARMACY_CERTIFICATION_EXPIRED", "R-PHA-2")}, _pharmacy(until=NOW)),
    case("pharmacist-untrained", {("PHARMACIST_NOT_TRAINED", "R-PHA-3")}, _training(None)),
    case("pharmacist-trained-later", {("PHARMACIST_NOT_TRAINED", "R-PHA-3")}, _training(NOW + HOUR)),
    case(
        "checklist-incomplete",
        {("COUNSELING_INCOMPLETE", "R-COUNSEL-1")},
        counseling={"medication_guide_provided": True, "checklist_completed": False},
    ),
    case(
        "guide-not-provided",
        {("COUNSELING_INCOMPLETE", "R-COUNSEL-1")},
        counseling={"medication_guide_provided": False, "checklist_completed": True},
    ),
    case("unknown-number", {("AUTHORIZATION_NOT_FOUND", "R-AUTH-4")}, authorization_number="RA-ZZZZZ-ZZZZZ-ZZZZZ"),
    case("another-patients-authorization", {("AUTHORIZATION_PATIENT_MISMATCH", "R-AUTH-4")}, rems_patient_id="RP-9999"),
    case(
        "authorization-voided",
        {("AUTHORIZATION_VOIDED", "R-AUTH-3")},
        _authorization(status=AuthorizationStatus.VOIDED),
    ),
    case(
        "authorization-expired",
        {("AUTHORIZATION_EXPIRED", "R-AUTH-3")},
        _authorization(issued_at=EXPIRED_ISSUE, expires_at=NOW),
    ),
    case(
        "authorization-dispensed",
        {("AUTHORIZATION_ALREADY_USED", "R-DISP-5")},
        _authorization(status=AuthorizationStatus.DISPENSED),
    ),
    case("authorization-held-by-live-confirmation", {("AUTHORIZATION_ALREADY_USED", "R-DISP-5")}, _live_confirmation),
    case("days-supply-over-authorized", {("DAYS_SUPPLY_EXCEEDED", "R-DISP-4")}, _authorization(days_supply=21)),
    # The issue's example: 100 capsules against an authorization for 28.
    case("quantity-over-authorized", {("QUANTITY_EXCEEDED", "R-DISP-6")}, quantity=100),
    *(
        case(f"patient-{s.value}", {("PATIENT_NOT_ELIGIBLE", "R-PAT-2")}, _patient(status=s))
        for s in (PatientStatus.HALTED, PatientStatus.NEEDS_INTERVENTION, PatientStatus.DISCONTINUED)
    ),
    case("no-test", {("PREGNANCY_TEST_MISSING", "R-PREG-3")}, _tests()),
    case("test-stale", {("PREGNANCY_TEST_STALE", "R-PREG-3")}, _tests(neg(NOW - STALE_TEST))),
    case(
        "newest-test-positive", {("PREGNANCY_TEST_POSITIVE", "R-PREG-4")}, _tests(neg(NOW - 3 * DAY), pos(NOW - HOUR))
    ),
    case("early-refill", {("EARLY_REFILL", "R-DISP-3")}, _prior_dispensed(EARLY_DAYS)),
    case("treatment-on-hold", {("TREATMENT_ON_HOLD", "R-CYCLE-3")}, _course(CourseStatus.ON_HOLD)),
    case("critical-unacknowledged", {("CLINICAL_ALERT_UNACKNOWLEDGED", "R-ACK-1")}, _course(platelets=25.0)),
]


@pytest.mark.parametrize("c", DISPENSE_CASES, ids=lambda c: c.id)
def test_dispense_denied_with_each_reason(c: Case):
    """R-DISP-1 (and the rule each case names): one failing rule denies the dispense with exactly
    its code and rule ID; no confirmation is stored, the authorization keeps its status."""
    world = dispense_world(**c.world)
    if c.setup is not None:
        c.setup(world)
    auth = world.authorization
    assert auth is not None
    stored_status, dispenses_before = auth.status, len(world.store.all(Dispense))
    answer = ask_dispense(world, **c.request)

    assert answer.result is not None and answer.result.decision == "denied"
    assert pairs(answer) == c.expected
    assert answer.result.confirmation_number is None and answer.result.confirmation_expires_at is None
    assert len(world.store.all(Dispense)) == dispenses_before
    assert not [
        d for d in world.store.all(Dispense) if d.pharmacy_id == PHARMACY_ID and d.decision_id == answer.result.id
    ]
    assert world.store.get(Authorization, auth.id).status == stored_status
    check_recorded(world, answer, PHARMACIST, "dispense", "dispense.denied")


def test_dispense_denial_lists_every_failing_reason():
    """R-DISP-1: every failing reason is listed."""
    world = dispense_world()
    _training(None)(world)
    _prior_dispensed(EARLY_DAYS)(world)
    _tests(neg(NOW - STALE_TEST))(world)
    answer = ask_dispense(
        world, days_supply=29, counseling={"medication_guide_provided": True, "checklist_completed": False}
    )
    assert pairs(answer) == {
        ("PHARMACIST_NOT_TRAINED", "R-PHA-3"),
        ("COUNSELING_INCOMPLETE", "R-COUNSEL-1"),
        ("DAYS_SUPPLY_EXCEEDED", "R-DISP-4"),
        ("PREGNANCY_TEST_STALE", "R-PREG-3"),
        ("EARLY_REFILL", "R-DISP-3"),
    }
    check_recorded(world, answer, PHARMACIST, "dispense", "dispense.denied")


def test_every_reason_the_decisions_can_give_has_a_use_case_case():
    """R-AUTH-1, R-DISP-1: every (code, rule) pair the decision code can give is covered above,
    so a new reason cannot be added without a use-case test."""
    given = set()
    for path in WORKFLOWS.glob("*.py"):
        given |= set(re.findall(r"Code\.(\w+),\s*Rule\.(\w+)", path.read_text()))
    given = {(code, rule.replace("_", "-")) for code, rule in given}
    covered = {p for c in AUTHORIZATION_CASES + DISPENSE_CASES for p in c.expected}
    assert given, "no reasons found in workflows/"
    assert given <= covered, f"reasons without a use-case test: {sorted(given - covered)}"


# -- races (R-DISP-5) ------------------------------------------------------------------------------


def rival_request(world: World, actor: Actor) -> Callable[[], DecisionAnswer]:
    """Another pharmacy's request for the same authorization, through the same use case."""

    def run() -> DecisionAnswer:
        answer = ask_dispense(world, actor=actor)
        assert answer.result is not None and answer.result.approved, "the competitor must win the authorization"
        return answer

    return run


def test_dispense_losing_the_race_is_decided_again_and_denied_already_used():
    """R-DISP-5: a confirmation refused by the index (a concurrent confirmation committed first)
    is decided again from fresh reads: denied AUTHORIZATION_ALREADY_USED; one confirmation exists;
    the lost attempt left nothing (one decision, one audit entry, one event for this request)."""
    world = dispense_world()
    auth = world.authorization
    assert auth is not None
    world.store.race_on_next_confirmation(rival_request(world, RIVAL))

    answer = ask_dispense(world)

    assert world.store.races_pending == 0
    assert answer.result is not None and answer.result.decision == "denied"
    assert pairs(answer) == {("AUTHORIZATION_ALREADY_USED", "R-DISP-5")}
    check_recorded(world, answer, PHARMACIST, "dispense", "dispense.denied")
    (holder,) = holders(world, auth)
    assert holder.pharmacy_id == RIVAL_PHARMACY_ID
    assert world.store.get(Authorization, auth.id).status is AuthorizationStatus.CONFIRMED
    assert not [d for d in world.store.all(Dispense) if d.pharmacy_id == PHARMACY_ID and d.authorization_id == auth.id]
    (rival_decision,) = world.mine(world.store.decisions, RIVAL)
    assert rival_decision.outcome == "approved" and rival_decision.audit_seq < answer.result.audit_seq
    assert len(world.store.events) == 2


def test_dispense_losing_twice_is_unavailable_and_records_nothing():
    """R-DISP-5: a second loss to the index is a 503, never an approval, and this request
    records nothing: no decision, audit entry, event, dispense, nor idempotency claim."""
    world = dispense_world()
    auth = world.authorization
    assert auth is not None
    rival_answers: list[DecisionAnswer] = []

    def rival_wins() -> None:
        rival_answers.append(rival_request(world, RIVAL)())

    def rival_reverses() -> None:
        result = rival_answers[-1].result
        assert result is not None and result.confirmation_number is not None
        dispenses.reverse(world.uow(), RIVAL, NOW, PROGRAM, result.confirmation_number, "wrong patient")

    world.store.race_on_next_confirmation(rival_wins, after=rival_reverses)
    world.store.race_on_next_confirmation(rival_request(world, THIRD))

    with pytest.raises(Unavailable) as caught:
        ask_dispense(world, key="k-twice")

    assert caught.value.status == 503
    assert world.store.races_pending == 0
    assert world.mine(world.store.decisions, PHARMACIST) == []
    assert world.mine(world.store.audit, PHARMACIST) == []
    # Every event stored is one of the competitors' four changes (one per audit entry).
    assert len(world.store.events) == len(world.store.audit) == 4
    assert all(e.payload.get("pharmacy_id") != str(PHARMACY_ID) for e in world.store.events)
    assert not [d for d in world.store.all(Dispense) if d.pharmacy_id == PHARMACY_ID and d.authorization_id == auth.id]
    assert world.store.idempotency_keys() == []
    (holder,) = holders(world, auth)
    assert holder.pharmacy_id == THIRD_PHARMACY_ID
    # Everything stored is the competitors': RIVAL's approval and reversal, THIRD's approval.
    assert sorted(e.action for e in world.store.audit) == sorted(
        ["dispense.decided", "dispense.reversed", "authorization.released", "dispense.decided"]
    )


def test_a_race_the_request_does_not_lose_changes_nothing():
    """R-DISP-5: the fake refuses only what the index would: a competitor that takes another
    authorization does not make this confirmation lose."""
    world = dispense_world()
    world.store.race_on_next_confirmation(lambda: None)  # a competitor that commits nothing on this authorization
    answer = ask_dispense(world)
    assert answer.result is not None and answer.result.approved
    assert world.store.races_pending == 0


# -- failing closed ---------------------------------------------------------------------------------


LOST = OperationalError("SELECT ...", {}, Exception("server closed the connection unexpectedly"))


@pytest.mark.parametrize(
    "method",
    ["dispense_inputs", "record_change", "record_decision", "add", "add_confirmation", "complete_idempotency_claim"],
)
def test_dispense_fails_closed_when_the_repository_fails(method):
    """R-DISP-1, R-AUD-1: an error anywhere in the decision's unit of work propagates (never an
    approval) and nothing of the request is kept: no decision, entry, event, confirmation, claim,
    and the authorization and a lapsed confirmation keep their stored status."""
    world = dispense_world()
    auth = world.authorization
    assert auth is not None
    old = confirmation_on(world, auth, expires_at=NOW - HOUR)  # approval lapses it through record_change
    before = world.recorded()
    world.store.fail_on(method, LOST)

    with pytest.raises(OperationalError):
        ask_dispense(world, key="k-fail")

    assert world.recorded() == before
    assert world.store.get(Authorization, auth.id).status is AuthorizationStatus.CONFIRMED
    assert world.store.get(Dispense, old.id).status is DispenseStatus.CONFIRMED
    # The same request succeeds once the repository answers again (the claim was released).
    answer = ask_dispense(world, key="k-fail")
    assert answer.result is not None and answer.result.approved


@pytest.mark.parametrize("method", ["authorization_inputs", "authorization_number_taken", "record_decision", "add"])
def test_authorization_fails_closed_when_the_repository_fails(method):
    """R-AUTH-1, R-AUD-1: an error in the decision's unit of work propagates and nothing is kept."""
    world = make_world()
    world.store.fail_on(method, LOST)
    with pytest.raises(OperationalError):
        ask_authorization(world, key="k-fail")
    assert world.recorded() == (0, 0, 0, 0, 0, 0)


# -- Idempotency-Key through the use cases -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["authorization", "dispense"])
def test_same_key_same_body_replays_the_first_answer(kind):
    """R-AUTH-4, R-DISP-5 (API.md Idempotency-Key): a repeated request returns the first answer
    byte for byte, marked replayed, and records nothing new (no second authorization or denial)."""
    world = make_world() if kind == "authorization" else dispense_world()
    ask = ask_authorization if kind == "authorization" else ask_dispense
    first = ask(world, key="k-1")
    assert first.result is not None and first.result.approved
    after_first = world.recorded()

    again = ask(world, key="k-1")

    assert again.replayed and again.result is None
    assert again.body == first.body and again.status == first.status == 201
    assert world.recorded() == after_first
    (key,) = world.store.idempotency_keys()
    assert key.response_body == first.body


@pytest.mark.parametrize("kind", ["authorization", "dispense"])
def test_same_key_other_body_is_invalid(kind):
    """API.md Idempotency-Key: a key reused with another body is a 422 and decides nothing."""
    world = make_world() if kind == "authorization" else dispense_world()
    ask = ask_authorization if kind == "authorization" else ask_dispense
    ask(world, key="k-1")
    after_first = world.recorded()
    with pytest.raises(Invalid) as caught:
        ask(world, key="k-1", days_supply=21, quantity=21)
    assert caught.value.status == 422
    assert world.recorded() == after_first


def test_a_failure_inside_the_decision_releases_the_claim():
    """API.md Idempotency-Key (R-AUD-1): a decision that fails keeps no claim, so the client's
    retry with the same key is decided (and not answered 'in flight')."""
    world = make_world()
    world.store.fail_on("record_decision", RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        ask_authorization(world, key="k-retry")
    assert world.store.idempotency_keys() == []
    answer = ask_authorization(world, key="k-retry")
    assert answer.result is not None and answer.result.approved and not answer.replayed


def _claim(world: World, key: str, body: dict[str, Any], age: timedelta) -> None:
    body = {**body, "patient_id": str(body["patient_id"])}
    world.store.put(
        IdempotencyKey(
            scope=f"prescriber:{PRESCRIBER_ID}",
            endpoint=authorizations.ENDPOINT,
            key=key,
            request_digest=digest({"endpoint": authorizations.ENDPOINT, "body": body}),
            created_at=world.store.clock - age,
        )
    )


def test_a_key_still_in_flight_is_a_conflict_and_decides_nothing():
    """API.md Idempotency-Key: while the first request runs, the same key is a 409."""
    world = make_world()
    _claim(world, "k-busy", auth_body(world), timedelta(seconds=5))
    with pytest.raises(Conflict) as caught:
        ask_authorization(world, key="k-busy")
    assert caught.value.status == 409
    assert world.recorded() == (0, 0, 0, 0, 0, 1)


def test_an_abandoned_claim_is_taken_over_and_decided_once():
    """API.md Idempotency-Key: a claim left by a crashed process is taken over and completed."""
    world = make_world()
    _claim(world, "k-stale", auth_body(world), timedelta(minutes=10))
    answer = ask_authorization(world, key="k-stale")
    assert answer.result is not None and answer.result.approved
    (key,) = world.store.idempotency_keys()
    assert key.response_body == answer.body and key.created_at == world.store.clock


def test_validity_windows_come_from_the_program_version():
    """R-AUTH-3, R-DISP-2 (Program definition): the authorization's days and the confirmation's
    hours are the program version's parameters, not numbers in code."""
    version = replace(
        VERSION, authorization_valid_days_frp=5, authorization_valid_days_other=20, confirmation_valid_hours=36
    )
    program = Program(PROGRAM.name, (version,))
    frp, male = make_world(FRP), make_world(MALE)
    for world, days in ((frp, 5), (male, 20)):
        result = ask_authorization(world, program=program).result
        assert result is not None and result.expires_at == NOW + days * DAY
        (row,) = world.store.all(Authorization)
        assert row.expires_at == NOW + days * DAY
    world = dispense_world()
    answer = ask_dispense(world, program=program)
    assert answer.result is not None and answer.result.confirmation_expires_at == NOW + 36 * HOUR


# -- the fakes themselves ------------------------------------------------------------------------------


def test_fake_unit_of_work_keeps_nothing_without_commit():
    """R-AUD-1: the fake, like the real unit of work, drops added rows, changed attributes and
    recorded entries when it ends without ``commit()``; ``commit()`` keeps them."""
    world = dispense_world()
    auth = world.authorization
    assert auth is not None
    before = world.recorded()
    with pytest.raises(RuntimeError), world.uow() as uow:
        inputs = uow.repo.dispense_inputs(auth.number, REMS_PATIENT_ID, PHARMACY_ID, PHARMACIST.user_id)
        assert inputs.authorization is not None and inputs.authorization is not auth  # a private copy
        inputs.authorization.status = AuthorizationStatus.VOIDED
        uow.repo.add(inputs.authorization)
        uow.repo.record_change(PHARMACIST, inputs.authorization, _void_change(), {"authorization_id": auth.id})
        raise RuntimeError("abandoned")
    assert world.recorded() == before and world.store.get(Authorization, auth.id).status is AuthorizationStatus.ISSUED
    with world.uow() as uow:
        row = uow.repo.dispense_inputs(auth.number, REMS_PATIENT_ID, PHARMACY_ID, PHARMACIST.user_id).authorization
        uow.repo.record_change(PHARMACIST, row, _void_change(), {"authorization_id": auth.id})
        uow.commit()
    assert world.store.get(Authorization, auth.id).status is AuthorizationStatus.VOIDED
    assert [e.action for e in world.store.audit] == ["authorization.voided"]


def _void_change():
    return AuthorizationLifecycle(AuthorizationStatus.ISSUED.value).void("test", NOW)


def test_fake_index_refuses_a_second_holding_confirmation():
    """R-DISP-5: the fake's ``add_confirmation`` refuses a second confirmed-or-dispensed
    dispense of one authorization, as the real partial unique index does."""
    world = dispense_world()
    auth = world.authorization
    assert auth is not None
    held = confirmation_on(world, auth, expires_at=NOW + HOUR)
    second = Dispense(**{**held.model_dump(), "id": uuid.uuid4(), "confirmation_number": "RC-3333A-3333B-3333C"})
    with world.uow() as uow, pytest.raises(AlreadyHeld):
        uow.repo.add_confirmation(second)
    second.status = DispenseStatus.REVERSED  # not holding: the index lets it in
    with world.uow() as uow:
        uow.repo.add_confirmation(second)
        uow.commit()
    assert len(holders(world, auth)) == 1
