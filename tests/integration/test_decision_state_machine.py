"""A hypothesis stateful test over the service layer (issue 4, "must show" 3).

Random programs of enrol, test, survey, authorize, advance the clock,
dispense, complete, reverse, void, reinstate and resolve run against a real
database through the services. After every step:

- every approved decision's *recorded snapshot* satisfies every rule, as
  checked by an oracle written here independently of ``workflows`` (so a
  bug in a decision function is not also a bug in its check);
- no authorization has two completed dispenses (R-DISP-5), and none holds
  two live confirmations;
- the audit chain verifies and every decision replays to its outcome.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule
from sqlalchemy import func
from sqlmodel import select

from rems_service import create_app
from rems_service.db import audit_chain as audit
from rems_service.db import migrate
from rems_service.db.engine import build_engine
from rems_service.db.models import AuditEntry, Authorization, DecisionRecord, Dispense, UserRole
from rems_service.services import authorizations, decisions, dispenses, patients
from rems_service.services.errors import ServiceError
from tests.helpers import complete_answers, make_pharmacy, make_prescriber, make_user
from workflows.actors import SYSTEM, Actor
from workflows.audit import GENESIS_HASH

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CATEGORIES = ("FRP_ADULT", "MALE_ADULT", "FNRP_ADULT")
_template: Path | None = None
#: Mostly the valid answer, so that approvals (what the invariants check) are common.
MOSTLY_TRUE = st.sampled_from([True, True, True, True, False])


def _database() -> str:
    """A fresh migrated SQLite database per example (copied from one template)."""
    global _template
    if _template is None:
        _template = Path(tempfile.mkdtemp(prefix="rems-stateful-")) / "template.sqlite3"
        engine = build_engine(f"sqlite:///{_template}")
        migrate.upgrade(engine)
        engine.dispose()
    path = Path(tempfile.mkdtemp(prefix="rems-stateful-")) / "db.sqlite3"
    shutil.copyfile(_template, path)
    return f"sqlite:///{path}"


def _t(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


def _days(earlier: datetime, later: datetime) -> int:
    return (later.date() - earlier.date()).days  # the program zone is UTC


# --- The oracle: REMS_RULES.md restated over the snapshot JSON ---------------------------


def _testing_ok(patient: dict, now: datetime, purpose: str) -> bool:
    if not patient["risk_category"].startswith("FRP"):
        return True
    tests = sorted(
        (t for t in patient["tests"] if _t(t["collected_at"]) <= now and t["sensitivity_miu_ml"] <= 50),
        key=lambda t: (_t(t["collected_at"]), t["result"] == "positive"),
    )
    if not tests or tests[-1]["result"] != "negative":
        return False
    negatives = [_t(t["collected_at"]) for t in tests if t["result"] == "negative"]
    started = patient["therapy_started_at"]
    if purpose == "authorization" and started is None:  # R-PREG-1
        return any(10 <= _days(c, now) <= 14 for c in negatives) and any(
            now - timedelta(hours=24) <= c <= now for c in negatives
        )
    in_first_phase = started is None or _days(_t(started), now) < 28  # R-PREG-3
    interval = 7 if in_first_phase else (28 if patient["menstrual_cycle"] == "regular" else 14)
    return _days(max(negatives), now) <= interval


def authorization_satisfies_rules(snapshot: dict, now: datetime) -> list[str]:
    patient, req = snapshot["patient"], snapshot["request"]
    survey_days = 182 if patient["risk_category"] == "FNRP_ADULT" else 28
    last = snapshot["last_survey_at"]
    checks = {
        "R-PRES-1": snapshot["prescriber_status"] == "certified",
        "R-AUTH-1": patient["prescriber_id"] == snapshot["prescriber_id"],
        "R-PAT-2": patient["status"] in ("enrolled", "on_therapy"),
        "R-AUTH-2": req["days_supply"] <= 28,
        "R-PRES-2": req["prescriber_survey"]["counseled_on_risks"] is True,
        "R-CONTRA": patient["risk_category"].startswith("FNRP")
        or req["prescriber_survey"]["contraception_confirmed"] is True,
        "R-SURV-1": last is not None and _t(last) <= now and _days(_t(last), now) <= survey_days,
        "R-PREG": _testing_ok(patient, now, "authorization"),
    }
    return [rule for rule, ok in checks.items() if not ok]


def dispense_satisfies_rules(snapshot: dict, now: datetime) -> list[str]:
    pharmacy, pharmacist, req, auth = (
        snapshot["pharmacy"],
        snapshot["pharmacist"],
        snapshot["request"],
        snapshot["authorization"],
    )
    prior = snapshot["prior_dispense"]
    checks = {
        "R-PHA-1/2": pharmacy["status"] == "certified" and _t(pharmacy["certified_until"]) > now,
        "R-PHA-3": pharmacist["training_completed_at"] is not None and _t(pharmacist["training_completed_at"]) <= now,
        "R-COUNSEL-1": req["counseling"]["medication_guide_provided"] is True
        and req["counseling"]["checklist_completed"] is True,
        "R-AUTH-4": auth is not None
        and auth["rems_patient_id"] == req["rems_patient_id"]
        and auth["number"] == req["authorization_number"],
    }
    if auth is not None and snapshot["patient"] is not None:
        live = auth["confirmation_expires_at"] is not None and now < _t(auth["confirmation_expires_at"])
        checks.update(
            {
                "R-AUTH-3": auth["status"] in ("issued", "confirmed") and now < _t(auth["expires_at"]),
                "R-DISP-5": not live,
                "R-DISP-4": req["days_supply"] <= auth["days_supply"],
                "R-PAT-2": snapshot["patient"]["status"] in ("enrolled", "on_therapy"),
                "R-PREG-3": _testing_ok(snapshot["patient"], now, "dispense"),
                "R-DISP-3": prior is None
                or _days(now, _t(prior["dispensed_at"]) + timedelta(days=prior["days_supply"])) <= 7,
            }
        )
    else:
        checks["patient facts read"] = False
    return [rule for rule, ok in checks.items() if not ok]


ORACLES = {"authorization": authorization_satisfies_rules, "dispense": dispense_satisfies_rules}


class DecisionMachine(RuleBasedStateMachine):
    patients_ = Bundle("patients")
    authorizations_ = Bundle("authorizations")
    confirmations = Bundle("confirmations")

    @initialize()
    def setup(self):
        self.app = create_app({"DATABASE_URL": _database()})
        self.runtime = self.app.extensions["rems"]
        self.now = START
        prescriber = make_prescriber(self.runtime, now=START - timedelta(days=400))
        user, _ = make_user(self.runtime, "prescriber", prescriber_id=prescriber.id)
        self.prescriber = Actor(user.id, UserRole.PRESCRIBER.value, prescriber_id=prescriber.id)
        self.pharmacists = []
        for ncpdp, trained in (("1111111", True), ("2222222", True), ("1111111", False)):
            pharmacy = self._pharmacy(ncpdp)
            when = START - timedelta(days=30) if trained else None
            u, _ = make_user(self.runtime, "pharmacist", pharmacy_id=pharmacy.id, training_completed_at=when)
            self.pharmacists.append(
                Actor(u.id, UserRole.PHARMACIST.value, pharmacy_id=pharmacy.id, training_completed_at=when)
            )
        self.checked_decisions = 0

    def _pharmacy(self, ncpdp):
        if not hasattr(self, "_pharmacies"):
            self._pharmacies = {}
        if ncpdp not in self._pharmacies:
            # The second pharmacy's certification runs out during the run (R-PHA-2).
            certified_at = START - timedelta(days=725) if ncpdp == "2222222" else START - timedelta(days=10)
            self._pharmacies[ncpdp] = make_pharmacy(self.runtime, ncpdp_id=ncpdp, now=certified_at)
        return self._pharmacies[ncpdp]

    def teardown(self):
        if hasattr(self, "runtime"):
            self.runtime.engine.dispose()

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ServiceError:
            return None  # a refused command (404/409/422) changes nothing; the invariants still run

    # --- the steps ---

    @rule(target=patients_, category=st.sampled_from(CATEGORIES), cycle=st.sampled_from(["regular", "irregular"]))
    def enroll(self, category, cycle):
        row = patients.enroll(
            self.runtime.uow(),
            self.prescriber,
            self.now,
            self.runtime.program,
            first_name="Pat",
            last_name="Ient",
            date_of_birth=date(1970, 5, 5),
            risk_category=category,
            menstrual_cycle=cycle if category.startswith("FRP") else None,
            fnrp_reason="hysterectomy" if category.startswith("FNRP") else None,
            ppaf_signed=True,
            counseling_completed=True,
        )
        return (row.id, row.rems_patient_id, category)

    @rule(patient=patients_, hours_ago=st.integers(0, 16 * 24), rare=st.integers(0, 19))
    def record_test(self, patient, hours_ago, rare):
        if not patient[2].startswith("FRP"):
            return
        result = "positive" if rare == 0 else "negative"
        self._call(
            patients.record_test,
            self.runtime.uow(),
            self.prescriber,
            self.now,
            self.runtime.program,
            patient[0],
            collected_at=self.now - timedelta(hours=hours_ago),
            result=result,
            sensitivity_miu_ml=25,
        )

    @rule(patient=patients_, hours_ago=st.integers(0, 40 * 24), flag=st.integers(0, 9))
    def record_survey(self, patient, hours_ago, flag):
        # Mostly complete answers (R-SURV-3), sometimes revealing non-compliance, sometimes incomplete
        # (refused at entry, so it never counts as a current survey).
        answers = {"shared_capsules": False} if flag == 1 else complete_answers(patient[2], shared_capsules=flag == 0)
        self._call(
            patients.record_survey,
            self.runtime.uow(),
            self.prescriber,
            self.now,
            self.runtime.program,
            patient[0],
            completed_at=self.now - timedelta(hours=hours_ago),
            answers=answers,
        )

    @rule(patient=patients_)
    def prepare_for_authorization(self, patient):
        """What a careful prescriber does first: a fresh survey and, for FRP, the two
        R-PREG-1 tests (12 days and 2 hours before now)."""
        if patient[2].startswith("FRP"):
            for ago in (timedelta(days=12), timedelta(hours=2)):
                self._call(
                    patients.record_test,
                    self.runtime.uow(),
                    self.prescriber,
                    self.now,
                    self.runtime.program,
                    patient[0],
                    collected_at=self.now - ago,
                    result="negative",
                    sensitivity_miu_ml=25,
                )
        self._call(
            patients.record_survey,
            self.runtime.uow(),
            self.prescriber,
            self.now,
            self.runtime.program,
            patient[0],
            completed_at=self.now - timedelta(hours=1),
            answers=complete_answers(patient[2]),
        )

    @rule(patient=patients_)
    def reinstate_or_resolve(self, patient):
        for command in (patients.reinstate, patients.resolve_intervention):
            self._call(command, self.runtime.uow(), SYSTEM, self.now, self.runtime.program, patient[0], "reviewed")

    @rule(
        target=authorizations_,
        patient=patients_,
        days=st.sampled_from([14, 28, 29]),
        counseled=MOSTLY_TRUE,
        contraception=MOSTLY_TRUE,
    )
    def authorize(self, patient, days, counseled, contraception):
        decision_id = authorizations.request(
            self.runtime.uow,
            self.prescriber,
            self.now,
            self.runtime.program,
            authorizations.AuthorizationCommand.of(
                patient_id=patient[0],
                days_supply=days,
                quantity=days,
                strength_mg=10.0,
                prescriber_survey={"counseled_on_risks": counseled, "contraception_confirmed": contraception},
            ),
        ).result.id
        with self.runtime.session() as s:
            number = s.exec(select(Authorization.number).where(Authorization.decision_id == decision_id)).first()
        return (number, patient[1], days)

    @rule(target=authorizations_, patient=patients_, days=st.sampled_from([14, 28]))
    def prepare_and_authorize(self, patient, days):
        """The common path, given more weight: prepare, then ask for an authorization."""
        self.prepare_for_authorization(patient)
        return self.authorize(patient, days, True, True)

    @rule(hours=st.sampled_from([1, 6, 23, 24, 25, 7 * 24, 8 * 24, 21 * 24, 29 * 24]))
    def advance_clock(self, hours):
        self.now += timedelta(hours=hours)

    @rule(
        target=confirmations,
        auth=authorizations_,
        who=st.sampled_from([0, 0, 0, 0, 1, 2]),
        days_delta=st.sampled_from([0, 0, 0, -7, 1]),
        counseled=MOSTLY_TRUE,
        wrong_patient=st.integers(0, 9),
    )
    def dispense(self, auth, who, days_delta, counseled, wrong_patient):
        number, rems_patient_id, days = auth
        decision_id = dispenses.request(
            self.runtime.uow,
            self.pharmacists[who],
            self.now,
            self.runtime.program,
            dispenses.command(
                authorization_number=number or "RA-00000-00000-00000",
                rems_patient_id="RP-00000-00000" if wrong_patient == 0 else rems_patient_id,
                days_supply=days + days_delta,
                quantity=days,
                counseling={"medication_guide_provided": counseled, "checklist_completed": True},
            ),
        ).result.id
        with self.runtime.session() as s:
            row = s.exec(select(Dispense).where(Dispense.decision_id == decision_id)).first()
        return (row.confirmation_number if row else None, who)

    @rule(auth=authorizations_)
    def dispense_and_complete(self, auth):
        """The common pharmacy path, given more weight: a valid request, handed over at once."""
        confirmation = self.dispense(auth, 0, 0, True, 1)
        self.complete(confirmation)

    @rule(confirmation=consumes(confirmations))
    def complete(self, confirmation):
        if confirmation[0]:
            self._call(
                dispenses.complete,
                self.runtime.uow(),
                self.pharmacists[confirmation[1]],
                self.now,
                self.runtime.program,
                confirmation[0],
            )

    @rule(confirmation=confirmations)
    def reverse(self, confirmation):
        if confirmation[0]:
            self._call(
                dispenses.reverse,
                self.runtime.uow(),
                self.pharmacists[confirmation[1]],
                self.now,
                self.runtime.program,
                confirmation[0],
                None,
            )

    @rule(auth=authorizations_, chance=st.integers(0, 3))
    def void(self, auth, chance):
        if auth[0] and chance == 0:
            self._call(
                authorizations.void, self.runtime.uow(), self.prescriber, self.now, self.runtime.program, auth[0], None
            )

    # --- after every step ---

    @invariant()
    def approvals_satisfy_every_rule(self):
        if not hasattr(self, "runtime"):
            return
        with self.runtime.session() as s:
            rows = s.exec(
                select(DecisionRecord)
                .where(DecisionRecord.audit_seq > self.checked_decisions)
                .order_by(DecisionRecord.audit_seq)
            ).all()
        for row in rows:
            if row.outcome == "approved":
                broken = ORACLES[row.kind](row.snapshot, row.evaluated_at)
                assert not broken, f"approved {row.kind} at {row.evaluated_at} breaks {broken}: {row.snapshot}"
            else:
                assert row.reasons, "a denial lists its reasons"
            self.checked_decisions = row.audit_seq

    @invariant()
    def one_completed_dispense_per_authorization(self):
        if not hasattr(self, "runtime"):
            return
        with self.runtime.session() as s:
            for status in ("dispensed", "confirmed"):
                worst = s.exec(
                    select(func.count())
                    .select_from(Dispense)
                    .where(Dispense.status == status)
                    .group_by(Dispense.authorization_id)
                    .order_by(func.count().desc())
                    .limit(1)
                ).first()
                assert worst in (None, 1), f"an authorization has {worst} dispenses in status {status}"

    @invariant()
    def chain_verifies_and_decisions_replay(self):
        """Incrementally: the entries and decisions added by the last step."""
        if not hasattr(self, "runtime"):
            return
        after_seq, after_hash = getattr(self, "verified", (0, GENESIS_HASH))
        with self.runtime.uow() as uow:
            check = audit.verify_chain(uow.session, after_seq, after_hash)
            assert check.valid, check
            rows = uow.session.exec(
                select(AuditEntry, DecisionRecord)
                .join(DecisionRecord, DecisionRecord.audit_seq == AuditEntry.seq)
                .where(AuditEntry.seq > after_seq)
            ).all()
            for entry, row in rows:
                assert decisions._replay_row(self.runtime.program, entry, row).matches, row.id
        self.verified = (check.head_seq, check.head_hash)


DecisionMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_decision_state_machine():
    DecisionMachine.TestCase().runTest()
