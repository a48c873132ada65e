"""The repository: every read and every row lock of the use cases, and the row → facts mapping.

Lock order, the same on every path that changes patients, authorizations or
dispenses: **patient, then authorization, then dispense**. The patient lock
serializes everything decided for one patient (a positive pregnancy test
cannot slip between a decision's read and its write); the authorization lock
is R-DISP-5's row lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite units
of work hold the database write lock from their first statement).

The decision reads (``authorization_inputs``, ``dispense_inputs``) return
every fact a decision needs in one object, so how many statements gather them
is this module's business alone (``bench/README.md`` lists them).

Writes that belong with a change — the audit entry, the outbox event, the
decision row, the idempotent response — go through here too, so a use case
sees one object and its unit of work.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, and_, bindparam, delete, false, func, insert, or_, true, update
from sqlalchemy import select as select_columns
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, defer
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col, select

from workflows.actors import Actor
from workflows.advisories import LabValue
from workflows.audit import API_ORIGIN, OUTCOME_COMPLETED, Origin
from workflows.authorizations import OPEN_STATUSES, AuthorizationStatus
from workflows.courses import CourseFacts, CourseStatus, HoldPeriod
from workflows.decisions import Decision, PatientFacts
from workflows.dispenses import DispenseStatus, PharmacistFacts, PharmacyFacts, PriorDispense
from workflows.identifiers import normalize_reference_number
from workflows.labs import ADVISORY_CODES, RESPONSE_CODES
from workflows.lifecycle import StateChange
from workflows.participants import PharmacyStatus, PrescriberStatus
from workflows.patients import PatientStatus, RiskCategory
from workflows.snapshots import dump as dump_snapshot
from workflows.surveys import is_complete as survey_is_complete
from workflows.testing import PregnancyTest

from . import audit_chain, decision_sql, outbox
from .engine import database_now, remember_clock
from .models import (
    AuditEntry,
    Authorization,
    DecisionRecord,
    Dispense,
    IdempotencyKey,
    LabResult,
    Notice,
    Patient,
    PatientSurvey,
    Pharmacy,
    PregnancyTestRecord,
    Prescriber,
    TreatmentCourse,
    TreatmentCourseEvent,
    User,
    table_of,
)

RowT = TypeVar("RowT", bound=SQLModel)

#: Audit actions of the two decisions; the outcome column says approved or denied.
DECISION_ACTIONS = {"authorization": "authorization.decided", "dispense": "dispense.decided"}


class AlreadyHeld(Exception):
    """R-DISP-5's unique index refused a second live or completed confirmation of one
    authorization: another request won the race. The unit of work must roll back."""


class Duplicate(Exception):
    """A unique constraint refused a row (a concurrent duplicate). The unit of work must roll back."""


class StaleClaim(Exception):
    """An idempotency claim was taken over by another process before its response was stored."""


def patient_subject(row: Patient) -> dict[str, Any]:
    """How the audit log and events name a patient: ids only (R-AUD-3)."""
    return {"patient_id": row.id, "rems_patient_id": row.rems_patient_id, "prescriber_id": row.prescriber_id}


def authorization_subject(row: Authorization) -> dict[str, Any]:
    return {
        "authorization_id": row.id,
        "authorization_number": row.number,
        "patient_id": row.patient_id,
        "rems_patient_id": row.rems_patient_id,
        "prescriber_id": row.prescriber_id,
    }


def dispense_subject(row: Dispense) -> dict[str, Any]:
    return {
        "dispense_id": row.id,
        "confirmation_number": row.confirmation_number,
        "authorization_id": row.authorization_id,
        "patient_id": row.patient_id,
        "rems_patient_id": row.rems_patient_id,
        "pharmacy_id": row.pharmacy_id,
    }


def prescriber_subject(row: Prescriber) -> dict[str, Any]:
    return {"prescriber_id": row.id, "npi": row.npi}


def pharmacy_subject(row: Pharmacy) -> dict[str, Any]:
    return {"pharmacy_id": row.id, "ncpdp_id": row.ncpdp_id}


def patient_facts(row: Patient, tests: Sequence[Any]) -> PatientFacts:
    """The snapshot of a patient that decisions and the patient view read: ids,
    category, status and tests (``collected_at``, ``result``, ``sensitivity_miu_ml``)."""
    return PatientFacts(
        patient_id=str(row.id),
        rems_patient_id=row.rems_patient_id,
        prescriber_id=str(row.prescriber_id),
        risk_category=row.risk_category,
        menstrual_cycle=row.menstrual_cycle,
        status=row.status,
        therapy_started_at=row.therapy_started_at,
        tests=tuple(
            PregnancyTest(t.collected_at, t.result, t.sensitivity_miu_ml)
            for t in sorted(tests, key=lambda t: t.collected_at)
        ),
    )


def course_facts(row: TreatmentCourse) -> CourseFacts:
    """The snapshot of a course that decisions read (no name, no lab value)."""
    return CourseFacts(
        course_id=str(row.id),
        regimen=row.regimen,
        start_date=row.start_date,
        dose_mg=float(row.dose_mg),
        dose_every_days=row.dose_every_days,
        days_on=row.days_on,
        cycle_length_days=row.cycle_length_days,
        status=row.status,
        status_reason_code=row.status_reason_code,
        status_changed_at=row.status_changed_at,
        thromboprophylaxis=row.thromboprophylaxis,
        on_dialysis=bool(row.on_dialysis),
        weight_kg=row.weight_kg,
        holds=tuple(
            HoldPeriod(datetime.fromisoformat(h["start"]), datetime.fromisoformat(h["end"]) if h.get("end") else None)
            for h in row.holds
        ),
    )


@dataclass(frozen=True)
class ClinicalInputs:
    """What the clinical advisories read: the patient's course that is not stopped (else the
    newest stopped one, which still refuses under R-CYCLE-3) and the latest relevant labs."""

    facts: CourseFacts
    labs: tuple[LabValue, ...]


@dataclass(frozen=True)
class AuthorizationInputs:
    """What an authorization decision reads, with the patient row locked."""

    patient: Patient
    prescriber_status: PrescriberStatus
    facts: PatientFacts
    last_survey_at: datetime | None
    #: None for a patient without a treatment course (the REMS decides as before).
    clinical: ClinicalInputs | None = None


@dataclass(frozen=True)
class DispenseInputs:
    """What a dispense decision reads, with the patient and authorization rows locked.

    ``patient``/``facts``/``prior`` are read only when the authorization
    belongs to the REMS patient presented (a pharmacy learns nothing about a
    patient from a wrong number); ``holding`` is the authorization's
    confirmation in stored status ``confirmed``, if any.
    """

    authorization: Authorization | None
    holding: Dispense | None
    pharmacy: PharmacyFacts
    pharmacist: PharmacistFacts
    patient: Patient | None
    facts: PatientFacts | None
    prior: PriorDispense | None
    clinical: ClinicalInputs | None = None


@dataclass(frozen=True)
class IdempotencyClaim:
    id: uuid.UUID
    created_at: datetime


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str


@dataclass(frozen=True)
class RecordedDecision:
    """A decision as ``record_decision`` stored it (the fields a Decision body shows), and
    the ``decisions`` row's values."""

    id: uuid.UUID
    outcome: str
    reasons: list[dict[str, str]]
    evaluated_at: datetime
    program_version: str
    audit_seq: int
    row_values: dict[str, Any]


@dataclass(frozen=True)
class _PendingDecision:
    """A decision whose audit entry holds its place in the chain, waiting for its one
    write statement (PostgreSQL: ``Repository.write_pending``)."""

    entry: dict[str, Any]
    codes: list[str]
    refs: list[tuple[str, str]]
    decision: dict[str, Any]
    event: dict[str, Any]
    issued: tuple[str, dict[str, Any]] | None


def _clinical(pieces: decision_sql.PatientPieces) -> ClinicalInputs | None:
    return None if pieces.course is None else ClinicalInputs(course_facts(pieces.course), pieces.labs)


@dataclass(frozen=True)
class DecisionWrite:
    """What recording a decision writes: the audit entry digesting its snapshot, the
    decision row holding it, the outbox event (the repository and its test fakes alike)."""

    actor: Actor
    kind: str
    decision_id: uuid.UUID
    decision: Decision
    snapshot: dict[str, Any]
    reasons: list[dict[str, str]]
    program_version: str
    now: datetime
    subject: Mapping[str, Any]
    details: Mapping[str, Any]
    #: The front the request came through (INTEROP.md), and its message's digest.
    origin: Origin = API_ORIGIN
    #: Details for the audit entry alone, not the event (R-ACK-1's acknowledgements).
    audit_only: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Subject keys kept out of the outbox event (and so out of webhooks): identifiers the
    #: caller did not send and may not learn (the audit entry still holds them).
    withheld: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        actor: Actor,
        kind: str,
        decision_id: uuid.UUID,
        snapshot: Any,
        decision: Decision,
        program_version: str,
        now: datetime,
        subject: Mapping[str, Any],
        details: Mapping[str, Any],
        origin: Origin = API_ORIGIN,
        audit_only: Mapping[str, Any] | None = None,
        withheld: frozenset[str] = frozenset(),
    ) -> DecisionWrite:
        reasons = [r.as_dict() for r in decision.reasons]
        return cls(
            actor,
            kind,
            decision_id,
            decision,
            dump_snapshot(snapshot),
            reasons,
            program_version,
            now,
            subject,
            details,
            origin,
            dict(audit_only or {}),
            withheld,
        )

    def audit_entry(self) -> dict[str, Any]:
        """The keyword arguments of ``audit_chain.append``."""
        return {
            "actor": self.actor,
            "action": DECISION_ACTIONS[self.kind],
            "outcome": self.decision.outcome,
            "effective_at": self.now,
            "subject": self.subject,
            "reasons": self.reasons,
            "program_version": self.program_version,
            "inputs": self.snapshot,
            "details": {
                "decision_id": self.decision_id,
                "kind": self.kind,
                "valid_until": self.decision.valid_until,
                **self.details,
                **self.origin.as_details(),
                **self.audit_only,
            },
        }

    def recorded(self, audit_seq: int, recorded_at: datetime) -> RecordedDecision:
        """The decision as recorded by the audit entry ``audit_seq`` written at ``recorded_at``."""
        values = {
            "id": self.decision_id,
            "kind": self.kind,
            "outcome": self.decision.outcome,
            "reasons": self.reasons,
            "evaluated_at": self.now,
            "valid_until": self.decision.valid_until,
            "program_version": self.program_version,
            "snapshot": self.snapshot,
            "actor_user_id": self.actor.user_id,
            "prescriber_id": self.subject.get("prescriber_id"),
            "pharmacy_id": self.subject.get("pharmacy_id"),
            "patient_id": self.subject.get("patient_id"),
            "rems_patient_id": self.subject.get("rems_patient_id"),
            "audit_seq": audit_seq,
            "created_at": recorded_at,
            "channel": self.origin.channel,
            "message_digest": self.origin.message_digest,
        }
        return RecordedDecision(
            id=self.decision_id,
            outcome=self.decision.outcome,
            reasons=self.reasons,
            evaluated_at=self.now,
            program_version=self.program_version,
            audit_seq=audit_seq,
            row_values=values,
        )

    def event_data(self) -> dict[str, Any]:
        return {
            **{
                k: v
                for k, v in self.subject.items()
                if k not in audit_chain.AUDIT_ONLY_SUBJECT_KEYS and k not in self.withheld
            },
            "decision_id": self.decision_id,
            "outcome": self.decision.outcome,
            "reasons": self.reasons,
            "valid_until": self.decision.valid_until,
            **self.details,
        }


class Repository:
    """Reads, row locks and the writes that accompany a change, on one session."""

    def __init__(self, session: Session):
        self.session = session
        self._pending: _PendingDecision | None = None
        self._postgresql: bool | None = None

    @property
    def postgresql(self) -> bool:
        """Whether the short decision path applies (``decision_sql``: PostgreSQL through psycopg)."""
        if self._postgresql is None:
            dialect = self.session.get_bind().dialect
            self._postgresql = dialect.name == "postgresql" and dialect.driver == "psycopg"
        return self._postgresql

    # -- locks (patient → authorization → dispense) -------------------------------------

    def lock_patient(self, patient_id: uuid.UUID) -> Patient | None:
        return self.session.get(Patient, patient_id, with_for_update=True, populate_existing=True)

    def lock_authorization(self, authorization_id: uuid.UUID, patient_id: uuid.UUID) -> tuple[Patient, Authorization]:
        """Lock the patient, then the authorization, and return both re-read under their locks."""
        patient = self.lock_patient(patient_id)
        auth = self.session.get(Authorization, authorization_id, with_for_update=True, populate_existing=True)
        assert patient is not None and auth is not None, "an authorization and its patient are never deleted"
        return patient, auth

    def lock_dispense(self, found: Dispense) -> tuple[Patient, Authorization, Dispense]:
        """Lock ``found``'s patient, authorization and then the dispense itself, re-read."""
        patient, auth = self.lock_authorization(found.authorization_id, found.patient_id)
        row = self.session.get(Dispense, found.id, with_for_update=True, populate_existing=True)
        assert row is not None
        return patient, auth, row

    def lock_by_number(self, number: str) -> tuple[Patient | None, Authorization | None]:
        """Lock the patient of the authorization numbered ``number``, then the
        authorization, in one statement (``FOR UPDATE OF patients, authorizations``:
        PostgreSQL locks each joined row in the order the clause names them, so the lock
        order holds); ``(None, None)`` when no authorization has that number."""
        found = self.session.execute(_LOCK_BY_NUMBER, {"number": normalize_reference_number(number)}).first()
        if found is None:
            return None, None
        return found[0], found[1]

    def lock_open_authorizations(self, patient_id: uuid.UUID) -> Sequence[Authorization]:
        """The patient's authorizations stored as open, oldest first, locked (the caller holds the patient)."""
        return self.session.exec(
            select(Authorization)
            .where(
                Authorization.patient_id == patient_id, col(Authorization.status).in_([s.value for s in OPEN_STATUSES])
            )
            .order_by(col(Authorization.issued_at))
            .with_for_update()
        ).all()

    def holding_dispense(self, authorization_id: uuid.UUID, lock: bool = False) -> Dispense | None:
        """The authorization's dispense in stored status ``confirmed`` (at most one: R-DISP-5's index)."""
        query = select(Dispense).where(
            Dispense.authorization_id == authorization_id, Dispense.status == DispenseStatus.CONFIRMED
        )
        if lock:
            query = query.with_for_update()
        return self.session.exec(query).first()

    # -- decision reads -------------------------------------------------------------------

    def authorization_inputs(
        self, patient_id: uuid.UUID, prescriber_id: uuid.UUID | None
    ) -> AuthorizationInputs | None:
        """Lock the patient and read what an authorization decision needs; None for an unknown patient.
        An unknown prescriber reads as decertified."""
        patient = self.lock_patient(patient_id)
        if patient is None:
            return None
        if self.postgresql:
            read = decision_sql.read_authorization_facts(self.session, patient.id, patient.risk_category, prescriber_id)
            return AuthorizationInputs(
                patient=patient,
                prescriber_status=read.prescriber_status,
                facts=patient_facts(patient, read.patient.tests),
                last_survey_at=read.last_survey_at,
                clinical=_clinical(read.patient),
            )
        status = (
            self.session.exec(select(Prescriber.status).where(Prescriber.id == prescriber_id)).first()
            if prescriber_id
            else None
        )
        return AuthorizationInputs(
            patient=patient,
            prescriber_status=PrescriberStatus(status) if status else PrescriberStatus.DECERTIFIED,
            facts=patient_facts(patient, self.pregnancy_tests(patient.id)),
            last_survey_at=self.last_survey_at(patient.id),
            clinical=self.clinical_inputs(patient.id),
        )

    def dispense_inputs(
        self, number: str, rems_patient_id: str, pharmacy_id: uuid.UUID | None, user_id: uuid.UUID | None
    ) -> DispenseInputs:
        """Lock the authorization numbered ``number`` (patient first) and read what a dispense
        decision needs; the pharmacy and pharmacist are read fresh (training recorded after the
        caller authenticated counts), an unknown pharmacy reads as decertified."""
        if self.postgresql:
            patient, auth = decision_sql.lock_by_number(self.session, normalize_reference_number(number))
            return self._dispense_inputs_pg(patient, auth, rems_patient_id, pharmacy_id, user_id)
        patient, auth = self.lock_by_number(number)
        holding = self.holding_dispense(auth.id) if auth is not None else None
        pharmacy, pharmacist = self.pharmacy_facts(pharmacy_id, user_id)
        matches = auth is not None and patient is not None and auth.rems_patient_id == rems_patient_id
        return DispenseInputs(
            authorization=auth,
            holding=holding,
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            patient=patient if matches else None,
            facts=patient_facts(patient, self.pregnancy_tests(patient.id)) if matches and patient else None,
            prior=self.prior_dispense(patient.id) if matches and patient else None,
            clinical=self.clinical_inputs(patient.id) if matches and patient else None,
        )

    def _dispense_inputs_pg(
        self,
        patient: Patient | None,
        auth: Authorization | None,
        rems_patient_id: str,
        pharmacy_id: uuid.UUID | None,
        user_id: uuid.UUID | None,
    ) -> DispenseInputs:
        """``dispense_inputs`` after the locking statement: one more statement for every other
        fact (and one for the holding confirmation's row, only when there is one)."""
        matches = auth is not None and patient is not None and auth.rems_patient_id == rems_patient_id
        read = decision_sql.read_dispense_facts(
            self.session,
            pharmacy_id,
            user_id,
            auth.id if auth is not None else None,
            patient.id if matches and patient is not None else None,
        )
        holding = self.session.get(Dispense, read.holding_id) if read.holding_id is not None else None
        pieces = read.patient
        return DispenseInputs(
            authorization=auth,
            holding=holding,
            pharmacy=read.pharmacy,
            pharmacist=read.pharmacist,
            patient=patient if matches else None,
            facts=patient_facts(patient, pieces.tests) if patient is not None and pieces is not None else None,
            prior=read.prior,
            clinical=_clinical(pieces) if pieces is not None else None,
        )

    def current_course(self, patient_id: uuid.UUID, lock: bool = False) -> TreatmentCourse | None:
        """The patient's course that is not stopped, else its newest stopped one; None without a course."""
        query = (
            select(TreatmentCourse)
            .where(TreatmentCourse.patient_id == patient_id)
            .order_by(
                (col(TreatmentCourse.status) == CourseStatus.STOPPED.value).asc(),
                col(TreatmentCourse.created_at).desc(),
            )
            .limit(1)
        )
        if lock:
            query = query.with_for_update()
        return self.session.exec(query).first()

    def clinical_inputs(self, patient_id: uuid.UUID) -> ClinicalInputs | None:
        """The course (one statement) and, for a patient with one, the latest result of each
        advisory code plus every M-protein result (one statement, a window function)."""
        course = self.current_course(patient_id)
        if course is None:
            return None
        return ClinicalInputs(course_facts(course), self.advisory_labs(patient_id))

    def courses_of(self, patient_id: uuid.UUID) -> Sequence[TreatmentCourse]:
        """Every course of the patient, newest first."""
        return self.session.exec(
            select(TreatmentCourse)
            .where(TreatmentCourse.patient_id == patient_id)
            .order_by(col(TreatmentCourse.created_at).desc())
        ).all()

    def course_events(self, course_id: uuid.UUID) -> Sequence[TreatmentCourseEvent]:
        """The course's events, oldest first."""
        return self.session.exec(
            select(TreatmentCourseEvent)
            .where(TreatmentCourseEvent.course_id == course_id)
            .order_by(col(TreatmentCourseEvent.seq))
        ).all()

    def course_events_of_patient(self, patient_id: uuid.UUID) -> Sequence[TreatmentCourseEvent]:
        """Every course event of the patient, oldest first (one statement)."""
        return self.session.exec(
            select(TreatmentCourseEvent)
            .join(TreatmentCourse, col(TreatmentCourse.id) == col(TreatmentCourseEvent.course_id))
            .where(TreatmentCourse.patient_id == patient_id)
            .order_by(col(TreatmentCourseEvent.at), col(TreatmentCourse.created_at), col(TreatmentCourseEvent.seq))
        ).all()

    def lab_ids_of(self, patient_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of ``ids`` are lab results of the patient."""
        return set(
            self.session.exec(
                select(LabResult.id).where(LabResult.patient_id == patient_id, col(LabResult.id).in_(list(ids)))
            ).all()
        )

    def lab_results(self, patient_id: uuid.UUID, loinc: str | None = None) -> Sequence[LabResult]:
        """The patient's lab results (of one code if given), oldest first."""
        query = select(LabResult).where(LabResult.patient_id == patient_id)
        if loinc is not None:
            query = query.where(LabResult.loinc == loinc)
        return self.session.exec(query.order_by(col(LabResult.collected_at), col(LabResult.recorded_at))).all()

    def advisory_labs(self, patient_id: uuid.UUID) -> tuple[LabValue, ...]:
        rank = (
            func.row_number()
            .over(
                partition_by=col(LabResult.loinc),
                order_by=(col(LabResult.collected_at).desc(), col(LabResult.recorded_at).desc()),
            )
            .label("rank")
        )
        ranked = (
            select_columns(
                col(LabResult.loinc),
                col(LabResult.canonical_value),
                col(LabResult.canonical_unit),
                col(LabResult.collected_at),
                rank,
            )
            .where(col(LabResult.patient_id) == patient_id, col(LabResult.loinc).in_(ADVISORY_CODES))
            .subquery()
        )
        rows = self.session.execute(
            select_columns(ranked.c.loinc, ranked.c.canonical_value, ranked.c.canonical_unit, ranked.c.collected_at)
            .where(or_(ranked.c.rank == 1, ranked.c.loinc.in_(RESPONSE_CODES)))
            .order_by(ranked.c.collected_at, ranked.c.loinc)
        ).all()
        return tuple(LabValue(r.loinc, float(r.canonical_value), r.canonical_unit, r.collected_at) for r in rows)

    def pharmacy_facts(
        self, pharmacy_id: uuid.UUID | None, user_id: uuid.UUID | None
    ) -> tuple[PharmacyFacts, PharmacistFacts]:
        """The pharmacy's certification and the pharmacist's training, in one statement."""
        status, certified_until, training = self.session.execute(
            select(
                select(Pharmacy.status).where(Pharmacy.id == pharmacy_id).scalar_subquery(),
                select(Pharmacy.certified_until).where(Pharmacy.id == pharmacy_id).scalar_subquery(),
                select(User.training_completed_at).where(User.id == user_id).scalar_subquery(),
            )
        ).one()
        return (
            PharmacyFacts(
                pharmacy_id=str(pharmacy_id),
                status=status or PharmacyStatus.DECERTIFIED,
                certified_until=certified_until,
            ),
            PharmacistFacts(user_id=str(user_id), training_completed_at=training),
        )

    def pregnancy_tests(self, patient_id: uuid.UUID) -> Sequence[Any]:
        """The patient's tests (``collected_at``, ``result``, ``sensitivity_miu_ml``), oldest first."""
        return self.session.execute(
            select(PregnancyTestRecord.collected_at, PregnancyTestRecord.result, PregnancyTestRecord.sensitivity_miu_ml)
            .where(PregnancyTestRecord.patient_id == patient_id)
            .order_by(col(PregnancyTestRecord.collected_at))
        ).all()

    def patient_facts(self, row: Patient) -> PatientFacts:
        return patient_facts(row, self.pregnancy_tests(row.id))

    def last_survey_at(self, patient_id: uuid.UUID) -> datetime | None:
        """The completion time of the patient's newest *complete* survey (R-SURV-3): one
        recorded before R-SURV-3 with an unanswered question does not count."""
        category = self.session.exec(select(Patient.risk_category).where(Patient.id == patient_id)).first()
        if category is None:
            return None
        rows = self.session.execute(
            select(PatientSurvey.completed_at, PatientSurvey.answers)
            .where(PatientSurvey.patient_id == patient_id)
            .order_by(col(PatientSurvey.completed_at).desc())
        )
        complete = (row.completed_at for row in rows if survey_is_complete(RiskCategory(category), row.answers))
        return next(complete, None)

    def prior_dispense(self, patient_id: uuid.UUID) -> PriorDispense | None:
        """R-DISP-3: the patient's most recent completed dispense."""
        row = self.session.execute(
            select(Dispense.dispensed_at, Dispense.days_supply)
            .where(Dispense.patient_id == patient_id, Dispense.status == DispenseStatus.DISPENSED)
            .order_by(col(Dispense.dispensed_at).desc())
            .limit(1)
        ).first()
        return PriorDispense(row.dispensed_at, row.days_supply) if row else None

    # -- plain reads ------------------------------------------------------------------------

    def get(self, row_type: type[RowT], row_id: Any, lock: bool = False) -> RowT | None:
        """The row of ``row_type`` with primary key ``row_id`` (locked if asked), or None."""
        return self.session.get(row_type, row_id, with_for_update=lock, populate_existing=lock)

    def ping(self) -> None:
        """One trivial query: raises if the database cannot answer."""
        self.session.execute(select_columns(1)).one()

    def actor_by_token_hash(self, token_hash: str, now: datetime) -> Actor | None:
        """The actor holding the token whose hash is ``token_hash`` (five columns, one statement);
        None when no user has it, its user is disabled, or it expired by ``now``."""
        # A Core statement built once (the table's columns, not the entity's): no ORM
        # loading context for five columns on every request.
        if self.postgresql:  # every request's first statement: on the driver's cursor
            found = decision_sql.actor_by_token_hash(self.session, token_hash, now)
            return None if found is None else Actor(**found)
        user = self.session.execute(_ACTOR_BY_TOKEN, {"token_hash": token_hash, "now": now}).first()
        if user is None:
            return None
        return Actor(
            user_id=user.id,
            role=user.role.value,
            prescriber_id=user.prescriber_id,
            pharmacy_id=user.pharmacy_id,
            training_completed_at=user.training_completed_at,
        )

    def users_page(self, after: tuple[datetime, uuid.UUID] | None, limit: int) -> Sequence[User]:
        """Users, oldest first by (``created_at``, ``id``), at most ``limit`` after the key ``after``."""
        query = _keyset(select(User), (col(User.created_at), col(User.id)), after, descending=False)
        return self.session.exec(query.limit(limit)).all()

    def actor_by_user_id(self, user_id: uuid.UUID) -> tuple[Actor, str] | None:
        """The actor of the user ``user_id`` as stored now, with the user's name; None when
        no such user exists or it is disabled. The one read behind a portal session
        (``users.load_active``): a disabled user's session stops at its next request."""
        user = self.session.execute(
            select_columns(
                col(User.id),
                col(User.role),
                col(User.prescriber_id),
                col(User.pharmacy_id),
                col(User.training_completed_at),
                col(User.name),
            ).where(col(User.id) == user_id, col(User.disabled_at).is_(None))
        ).first()
        if user is None:
            return None
        actor = Actor(
            user_id=user.id,
            role=user.role.value,
            prescriber_id=user.prescriber_id,
            pharmacy_id=user.pharmacy_id,
            training_completed_at=user.training_completed_at,
        )
        return actor, user.name

    def user_by_email(self, email: str) -> User | None:
        """The user whose normalized email is ``email``."""
        return self.session.exec(select(User).where(col(User.email) == email)).first()

    def exists(self, row_type: type[Any], *where: Any) -> bool:
        """Whether any row of ``row_type`` matches ``where``."""
        return self.session.exec(select(row_type).where(*where).limit(1)).first() is not None

    def find_authorization(self, number: str) -> Authorization | None:
        return self.session.exec(
            select(Authorization).where(Authorization.number == normalize_reference_number(number))
        ).first()

    def find_dispense(self, number: str) -> Dispense | None:
        return self.session.exec(
            select(Dispense).where(Dispense.confirmation_number == normalize_reference_number(number))
        ).first()

    def recorded_decisions(self, seq: int | None = None) -> Sequence[tuple[AuditEntry, DecisionRecord]]:
        """Each recorded decision with its audit entry, oldest first (only that of ``seq`` if given)."""
        query = select(AuditEntry, DecisionRecord).join(
            DecisionRecord,
            DecisionRecord.audit_seq == AuditEntry.seq,  # type: ignore[arg-type]
        )
        if seq is not None:
            query = query.where(AuditEntry.seq == seq)
        return self.session.exec(query.order_by(col(AuditEntry.seq))).all()

    # -- what the sweeps find due (each through an index, at most ``limit`` rows) ----------

    def authorizations_past_expiry(self, now: datetime, limit: int) -> list[uuid.UUID]:
        open_statuses = [s.value for s in OPEN_STATUSES]
        return self._ids(
            select(Authorization.id).where(
                Authorization.expires_at <= now, col(Authorization.status).in_(open_statuses)
            ),
            limit,
        )

    def authorizations_expiring_unused(self, now: datetime, until: datetime, limit: int) -> list[uuid.UUID]:
        return self._ids(
            select(Authorization.id).where(
                Authorization.expires_at > now,
                Authorization.expires_at <= until,
                Authorization.status == AuthorizationStatus.ISSUED.value,
            ),
            limit,
        )

    def confirmations_past_expiry(self, now: datetime, limit: int) -> list[uuid.UUID]:
        return self._ids(
            select(Dispense.id).where(
                Dispense.confirmation_expires_at <= now, Dispense.status == DispenseStatus.CONFIRMED.value
            ),
            limit,
        )

    def patient_ids_after(self, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
        """Every patient's id in id order, ``limit`` at a time (keyset: after ``after``)."""
        query = select(Patient.id).order_by(col(Patient.id))
        if after is not None:
            query = query.where(col(Patient.id) > after)
        return self._ids(query, limit)

    def patients_due(self, test_by: datetime, survey_by: datetime, limit: int) -> list[uuid.UUID]:
        """Patients whose next test is due by ``test_by`` or next survey by ``survey_by``."""
        due = set(self._ids(select(Patient.id).where(col(Patient.next_test_due_at) <= test_by), limit))
        due |= set(self._ids(select(Patient.id).where(col(Patient.next_survey_due_at) <= survey_by), limit))
        return sorted(due)

    def pharmacies_certified_until(self, by: datetime, limit: int) -> list[uuid.UUID]:
        return self._ids(
            select(Pharmacy.id).where(
                col(Pharmacy.certified_until) <= by, Pharmacy.status == PharmacyStatus.CERTIFIED.value
            ),
            limit,
        )

    def _ids(self, query: Any, limit: int) -> list[uuid.UUID]:
        return list(self.session.exec(query.limit(limit)).all())

    def notice_once(self, key: str, now: datetime) -> bool:
        """True the first time ``key`` is noticed (then remembered), False afterwards."""
        return self.add_unless_duplicate(Notice(key=key, created_at=now))

    # -- writes -------------------------------------------------------------------------------

    def add(self, row: Any) -> None:
        """Insert or update ``row`` now; ``Duplicate`` if a unique constraint refuses it."""
        self.write_pending()  # a decision recorded before comes first (it may be referred to)
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise Duplicate() from exc

    def add_unless_duplicate(self, row: Any) -> bool:
        """Insert ``row`` in a savepoint; False (and nothing inserted) if a unique constraint refuses it."""
        self.write_pending()
        try:
            with self.session.begin_nested():
                self.session.add(row)
                self.session.flush()
        except IntegrityError:
            return False
        return True

    def add_confirmation(self, row: Dispense) -> None:
        """Insert a dispense confirmation; ``AlreadyHeld`` if R-DISP-5's index refuses it."""
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise AlreadyHeld() from exc

    def append_audit(self, **entry: Any) -> AuditEntry:
        """Append an audit entry in this transaction (``audit_chain.append``)."""
        self.write_pending()  # the chain's head moves with a recorded decision's write
        return audit_chain.append(self.session, **entry)

    def record_event(self, event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> None:
        self.write_pending()
        outbox.record(self.session, event_type, occurred_at, data)

    def record_change(
        self,
        actor: Actor,
        row: Any,
        change: StateChange,
        subject: Mapping[str, Any],
        program_version: str | None = None,
    ) -> None:
        """Store ``change`` on ``row`` and write its audit entry and outbox event, in this transaction.

        The audit entry names the actor, the effective time, the prior and new
        state and the change's details.
        """
        self.write_pending()  # the chain's head moves with a recorded decision's write
        row.status = type(row.status)(change.to_state)  # keep the column's Enum type
        row.status_changed_at = change.at
        row.status_reason = change.details.get("reason")
        self.session.add(row)
        details = {"from_state": change.from_state, "to_state": change.to_state, **change.details}
        audit_chain.append(
            self.session,
            actor=actor,
            action=change.event,
            outcome=OUTCOME_COMPLETED,
            effective_at=change.at,
            subject=subject,
            program_version=program_version,
            inputs={"subject": dict(subject), "trigger": change.trigger, "from_state": change.from_state},
            details=details,
        )
        outbox.record(self.session, change.event, change.at, {**subject, **details, "actor": actor.as_audit()})

    def record_decision(
        self,
        write: DecisionWrite,
        event: str,
        *,
        confirmed: Authorization | None = None,
        issued: Authorization | Dispense | None = None,
    ) -> RecordedDecision:
        """Store the decision with the snapshot it read, its audit entry (digesting the
        snapshot) and its outbox event (R-AUD-1), with what it changed: ``confirmed``, the
        authorization a dispense approval changed (its new status set on the row), and
        ``issued``, the confirmation or authorization it issued. ``AlreadyHeld`` if
        R-DISP-5's index refuses an issued confirmation, ``Duplicate`` if a unique
        constraint refuses an issued authorization.

        On PostgreSQL the audit entry's place in the chain is taken now (one statement: the
        head's lock and clock, with ``confirmed``'s change) and everything else is written in
        one more statement by ``complete_idempotency_claim`` or by the unit of work's commit,
        whichever comes first (``decision_sql``). Elsewhere everything is written now."""
        if self.postgresql:
            return self._record_decision_pg(write, event, confirmed, issued)
        if confirmed is not None:
            self.add(confirmed)  # before the audit entry: the chain head is locked for less
        entry = audit_chain.append(self.session, **write.audit_entry())
        recorded = write.recorded(entry.seq, entry.recorded_at)
        # A Core insert (nothing changes the row later).
        self.session.execute(_INSERT_DECISION, recorded.row_values)
        outbox.record(self.session, event, write.now, write.event_data())
        if isinstance(issued, Dispense):
            self.add_confirmation(issued)
        elif issued is not None:
            self.add(issued)
        return recorded

    def _record_decision_pg(
        self,
        write: DecisionWrite,
        event: str,
        confirmed: Authorization | None,
        issued: Authorization | Dispense | None,
    ) -> RecordedDecision:
        assert self._pending is None, "one decision per unit of work"
        prepared = audit_chain.prepare(**write.audit_entry())
        change = None
        if confirmed is not None:
            change = decision_sql.AuthorizationChange(confirmed.id, confirmed.status.value, confirmed.status_changed_at)
            # Stored by the head's statement below: the session has nothing left to write for it.
            for name in ("status", "status_changed_at", "status_reason"):
                set_committed_value(confirmed, name, getattr(confirmed, name))
        self.session.flush()  # what the unit of work changed before (a lapsed confirmation settled)
        head_seq, head_hash, recorded_at = decision_sql.lock_head(self.session, change)
        remember_clock(self.session, recorded_at)
        entry = prepared.sealed(head_seq, head_hash, recorded_at)
        recorded = write.recorded(entry["seq"], recorded_at)
        self._pending = _PendingDecision(
            entry=entry,
            codes=prepared.codes,
            refs=prepared.refs,
            decision=recorded.row_values,
            event=outbox.event_values(event, write.now, recorded_at, write.event_data()),
            issued=(
                ("dispense" if isinstance(issued, Dispense) else "authorization", decision_sql.row_values(issued))
                if issued is not None
                else None
            ),
        )
        return recorded

    def write_pending(self, claim: decision_sql.Claim | None = None) -> bool:
        """Write the recorded decision's effects, if one waits (PostgreSQL), with ``claim``'s
        response; False if the claim was no longer held."""
        pending, self._pending = self._pending, None
        if pending is None:
            return True
        try:
            return decision_sql.write(
                self.session,
                pending.entry,
                pending.codes,
                pending.refs,
                pending.decision,
                pending.event,
                pending.issued,
                claim,
            )
        except IntegrityError as exc:
            if pending.issued is not None and pending.issued[0] == "dispense":
                raise AlreadyHeld() from exc
            raise Duplicate() from exc

    # -- idempotency keys ---------------------------------------------------------------------

    def database_now(self) -> datetime:
        return database_now(self.session)

    def claim_idempotency_key(
        self, scope: str, endpoint: str, key: str, request_digest: str
    ) -> IdempotencyClaim | IdempotencyKey:
        """Insert a claim for ``key``; if one exists already, return the existing row instead."""
        row = IdempotencyKey(
            scope=scope, endpoint=endpoint, key=key, request_digest=request_digest, created_at=self.database_now()
        )
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
        else:
            return IdempotencyClaim(row.id, row.created_at)
        return self.session.exec(
            select(IdempotencyKey).where(
                IdempotencyKey.scope == scope, IdempotencyKey.endpoint == endpoint, IdempotencyKey.key == key
            )
        ).one()

    def take_over_claim(self, existing: IdempotencyKey, now: datetime) -> IdempotencyClaim | None:
        """Take an abandoned claim over (compare-and-set: of two takers, one wins); None if lost."""
        taken = cast(  # DML gives a CursorResult
            CursorResult[Any],
            self.session.execute(
                update(IdempotencyKey)
                .where(
                    col(IdempotencyKey.id) == existing.id,
                    col(IdempotencyKey.created_at) == existing.created_at,
                    col(IdempotencyKey.response_body).is_(None),
                )
                .values(created_at=now)
            ),
        )
        return IdempotencyClaim(existing.id, now) if taken.rowcount == 1 else None

    def complete_idempotency_claim(self, claim: IdempotencyClaim, status: int, body: str) -> None:
        """Store the response with the decision; ``StaleClaim`` if another process took the claim."""
        if self._pending is not None:
            if not self.write_pending(decision_sql.Claim(claim.id, claim.created_at, status, body)):
                raise StaleClaim()
            return
        done = cast(  # DML gives a CursorResult
            CursorResult[Any],
            self.session.execute(
                update(IdempotencyKey)
                .where(
                    col(IdempotencyKey.id) == claim.id,
                    col(IdempotencyKey.created_at) == claim.created_at,
                    col(IdempotencyKey.response_body).is_(None),
                )
                .values(response_status=status, response_body=body, completed_at=self.database_now())
            ),
        )
        if done.rowcount != 1:
            raise StaleClaim()

    def release_idempotency_claim(self, claim: IdempotencyClaim) -> None:
        """Forget an unfinished claim (its request failed), so the client can retry."""
        self.session.execute(
            delete(IdempotencyKey).where(
                col(IdempotencyKey.id) == claim.id,
                col(IdempotencyKey.response_body).is_(None),
            )
        )

    # -- lists: keyset pages (the use cases make the cursors) ---------------------------------

    def patients_page(
        self, f: PatientListFilter, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[Patient]:
        """Patients matching ``f``, newest first by (``created_at``, ``id``), at most ``limit``
        after the key ``after``. Due dates are the reminder mirrors of the patient row."""
        query = select(Patient).where(_scope(col(Patient.prescriber_id), f.prescriber_id, f.everyone))
        if f.status is not None:
            query = query.where(Patient.status == f.status)
        if f.risk_category is not None:
            query = query.where(Patient.risk_category == f.risk_category)
        if f.test_due_before is not None:
            query = query.where(col(Patient.next_test_due_at) < f.test_due_before)
        if f.survey_due_before is not None:
            query = query.where(col(Patient.next_survey_due_at) < f.survey_due_before)
        for term in f.name_terms:  # every term in the first or the last name, case-insensitive
            query = query.where(
                or_(
                    col(Patient.first_name).icontains(term, autoescape=True),
                    col(Patient.last_name).icontains(term, autoescape=True),
                )
            )
        query = _keyset(query, (col(Patient.created_at), col(Patient.id)), after, descending=True)
        return self.session.exec(query.limit(limit)).all()

    def authorizations_page(
        self, f: AuthorizationListFilter, now: datetime, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[tuple[Authorization, datetime | None]]:
        """Authorizations matching ``f`` (``status`` is the status at ``now``), newest first by
        (``issued_at``, ``id``), each with the window end of the confirmation holding it (if any)."""
        holding = and_(
            col(Dispense.authorization_id) == col(Authorization.id), col(Dispense.status) == DispenseStatus.CONFIRMED
        )
        query = (
            select(Authorization, col(Dispense.confirmation_expires_at))
            .outerjoin(Dispense, holding)
            .where(_scope(col(Authorization.prescriber_id), f.prescriber_id, f.everyone))
        )
        if f.patient_id is not None:
            query = query.where(Authorization.patient_id == f.patient_id)
        if f.status is not None:
            query = query.where(_authorization_status_is(f.status, now))
        query = _keyset(query, (col(Authorization.issued_at), col(Authorization.id)), after, descending=True)
        return [(row, window_end) for row, window_end in self.session.exec(query.limit(limit)).all()]

    def dispenses_page(
        self, f: DispenseListFilter, now: datetime, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[tuple[Dispense, str]]:
        """Dispenses matching ``f`` (``status`` is the status at ``now``), each with its authorization's
        number. Live confirmations (``status`` confirmed) by window end, soonest first, by
        (``confirmation_expires_at``, ``id``); anything else newest first by (``confirmed_at``, ``id``)."""
        query = (
            select(Dispense, col(Authorization.number))
            .join(Authorization, col(Authorization.id) == col(Dispense.authorization_id))
            .where(_scope(col(Dispense.pharmacy_id), f.pharmacy_id, f.everyone))
        )
        if f.status is not None:
            query = query.where(_dispense_status_is(f.status, now))
        if f.by_window:
            query = _keyset(query, (col(Dispense.confirmation_expires_at), col(Dispense.id)), after, descending=False)
        else:
            query = _keyset(query, (col(Dispense.confirmed_at), col(Dispense.id)), after, descending=True)
        return [(row, number) for row, number in self.session.exec(query.limit(limit)).all()]

    # -- the standard fronts' reads (INTEROP.md) -----------------------------------------------

    def find_patient_by_rems_id(self, rems_patient_id: str) -> Patient | None:
        """The patient with this REMS patient ID (upper case, spaces removed), unlocked."""
        wanted = "".join(rems_patient_id.split()).upper()
        return self.session.exec(select(Patient).where(Patient.rems_patient_id == wanted)).first()

    def requirements_inputs(self, patient: Patient) -> tuple[PrescriberStatus, PatientFacts, datetime | None]:
        """What each requirement's state reads: the status of the prescriber the patient is
        enrolled with (an unknown one reads as decertified), the patient's facts, the newest
        complete survey."""
        status = self.session.exec(select(Prescriber.status).where(Prescriber.id == patient.prescriber_id)).first()
        return (
            PrescriberStatus(status) if status else PrescriberStatus.DECERTIFIED,
            patient_facts(patient, self.pregnancy_tests(patient.id)),
            self.last_survey_at(patient.id),
        )

    def newest_open_authorization(self, patient_id: uuid.UUID, now: datetime) -> Authorization | None:
        """The patient's newest authorization stored as open and not past its expiry at ``now``."""
        return self.session.exec(
            select(Authorization)
            .where(
                Authorization.patient_id == patient_id,
                col(Authorization.status).in_(list(OPEN_STATUSES)),
                col(Authorization.expires_at) > now,
            )
            .order_by(col(Authorization.issued_at).desc())
        ).first()

    def prescriber_npi(self, prescriber_id: uuid.UUID | None) -> str | None:
        if prescriber_id is None:
            return None
        return self.session.exec(select(Prescriber.npi).where(Prescriber.id == prescriber_id)).first()

    def pharmacy_ncpdp_id(self, pharmacy_id: uuid.UUID | None) -> str | None:
        if pharmacy_id is None:
            return None
        return self.session.exec(select(Pharmacy.ncpdp_id).where(Pharmacy.id == pharmacy_id)).first()

    def recent_decisions(self, kind: str, pharmacy_id: uuid.UUID, limit: int) -> Sequence[DecisionRecord]:
        """The newest ``limit`` decisions of ``kind`` made for ``pharmacy_id``, newest first."""
        query = (
            select(DecisionRecord)
            .options(defer(cast(Any, DecisionRecord.snapshot)))  # the list never reads the snapshot
            .where(col(DecisionRecord.kind) == kind, col(DecisionRecord.pharmacy_id) == pharmacy_id)
            .order_by(col(DecisionRecord.audit_seq).desc())
            .limit(limit)
        )
        return self.session.exec(query).all()


_INSERT_DECISION = insert(table_of(DecisionRecord))


# -- list filters and their SQL -----------------------------------------------------------------


@dataclass(frozen=True)
class PatientListFilter:
    """Which patients a list shows: one prescriber's (``prescriber_id``) or, with ``everyone``,
    all of them; neither shows none. ``name_terms`` must each be in the first or last name."""

    prescriber_id: uuid.UUID | None = None
    everyone: bool = False
    status: PatientStatus | None = None
    risk_category: RiskCategory | None = None
    test_due_before: datetime | None = None
    survey_due_before: datetime | None = None
    name_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthorizationListFilter:
    """One prescriber's authorizations or, with ``everyone``, all; ``status`` is the status at the list's time."""

    prescriber_id: uuid.UUID | None = None
    everyone: bool = False
    patient_id: uuid.UUID | None = None
    status: AuthorizationStatus | None = None


@dataclass(frozen=True)
class DispenseListFilter:
    """One pharmacy's dispenses or, with ``everyone``, all; ``status`` is the status at the list's time."""

    pharmacy_id: uuid.UUID | None = None
    everyone: bool = False
    status: DispenseStatus | None = None

    @property
    def by_window(self) -> bool:
        """Live confirmations are listed by window end (the hand-over queue), the rest newest first."""
        return self.status is DispenseStatus.CONFIRMED


def _scope(owner_column: Any, owner: uuid.UUID | None, everyone: bool) -> Any:
    """Rows of ``owner`` only; every row with ``everyone``; none without either (never all by omission)."""
    if everyone:
        return true()
    if owner is None:
        return false()
    return owner_column == owner


def _keyset(query: Any, columns: tuple[Any, Any], after: tuple[Any, Any] | None, descending: bool) -> Any:
    """Order ``query`` by the two ``columns`` (a unique key) and start strictly after ``after``."""
    first, second = columns
    if after is not None:
        a, b = after
        if descending:
            query = query.where(or_(first < a, and_(first == a, second < b)))
        else:
            query = query.where(or_(first > a, and_(first == a, second > b)))
    if descending:
        return query.order_by(first.desc(), second.desc())
    return query.order_by(first.asc(), second.asc())


def _authorization_status_is(status: AuthorizationStatus, now: datetime) -> Any:
    """SQL for "the authorization's status at ``now`` is ``status``": the same cases as
    ``workflows.authorizations.effective_status`` — a stored open status is confirmed while a
    confirmation holds it (window not ended), else expired from ``expires_at`` on, else issued."""
    stored = col(Authorization.status)
    open_ = stored.in_([s.value for s in OPEN_STATUSES])
    holding = aliased(Dispense)  # apart from the list's own join of the holding confirmation
    held = (
        select(holding.id)
        .where(
            holding.authorization_id == Authorization.id,
            holding.status == DispenseStatus.CONFIRMED,
            holding.confirmation_expires_at > now,
        )
        .exists()
    )
    if status is AuthorizationStatus.CONFIRMED:
        return and_(open_, held)
    if status is AuthorizationStatus.ISSUED:
        return and_(open_, ~held, col(Authorization.expires_at) > now)
    if status is AuthorizationStatus.EXPIRED:
        return or_(stored == status.value, and_(open_, ~held, col(Authorization.expires_at) <= now))
    return stored == status.value


def _dispense_status_is(status: DispenseStatus, now: datetime) -> Any:
    """SQL for "the dispense's status at ``now`` is ``status``" (``effective_dispense_status``):
    a stored confirmation whose window has ended has lapsed."""
    stored, window_end = col(Dispense.status), col(Dispense.confirmation_expires_at)
    if status is DispenseStatus.CONFIRMED:
        return and_(stored == status.value, window_end > now)
    if status is DispenseStatus.LAPSED:
        return or_(stored == status.value, and_(stored == DispenseStatus.CONFIRMED.value, window_end <= now))
    return stored == status.value


_USERS = table_of(User)
_ACTOR_BY_TOKEN = select_columns(
    _USERS.c.id, _USERS.c.role, _USERS.c.prescriber_id, _USERS.c.pharmacy_id, _USERS.c.training_completed_at
).where(
    _USERS.c.token_hash == bindparam("token_hash"),
    _USERS.c.disabled_at.is_(None),
    or_(_USERS.c.token_expires_at.is_(None), _USERS.c.token_expires_at > bindparam("now")),
)
#: Built once (``lock_by_number``): a statement built per call costs more than it executes.
_LOCK_BY_NUMBER = (
    select_columns(Patient, Authorization)
    .join(Authorization, col(Authorization.patient_id) == col(Patient.id))
    .where(col(Authorization.number) == bindparam("number"))
    .with_for_update(of=[table_of(Patient), table_of(Authorization)])
    .execution_options(populate_existing=True)
)
