"""The tables. Validation happens at the API (marshmallow) and in the domain:
SQLModel table models skip pydantic validation, so these are storage only.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlmodel import Field, SQLModel

from workflows.actors import UserRole
from workflows.authorizations import AuthorizationStatus
from workflows.clinical_params import Regimen
from workflows.courses import CourseStatus
from workflows.dispenses import DispenseStatus
from workflows.participants import PharmacyStatus, PrescriberStatus
from workflows.patients import FnrpReason, MenstrualCycle, PatientStatus, RiskCategory
from workflows.testing import PregnancyResult

from .types import EnumText, UTCDateTime

#: Deterministic constraint names, so migrations can drop and alter them
#: on every backend (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a ``table=True`` model: its ``__table__``, which SQLModel sets
    but does not declare to type checkers."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def _utc(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Prescriber(SQLModel, table=True):
    """A prescriber (R-PRES-1), registered by NPI."""

    __tablename__ = "prescribers"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    npi: str = Field(sa_column=Column(String(10), nullable=False, unique=True))
    first_name: str = Field(sa_type=String(100), nullable=False)
    last_name: str = Field(sa_type=String(100), nullable=False)
    email: str | None = Field(default=None, sa_type=String(254), nullable=True)
    status: PrescriberStatus = Field(sa_type=EnumText(PrescriberStatus), nullable=False)
    certified_at: datetime | None = _utc(nullable=True)
    status_changed_at: datetime = _utc()
    status_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)
    created_at: datetime = _utc()


class Pharmacy(SQLModel, table=True):
    """A dispensing pharmacy (R-PHA-1, R-PHA-2), registered by NCPDP id."""

    __tablename__ = "pharmacies"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    ncpdp_id: str = Field(sa_column=Column(String(7), nullable=False, unique=True))
    name: str = Field(sa_type=String(200), nullable=False)
    representative_name: str = Field(sa_type=String(200), nullable=False)
    representative_email: str = Field(sa_type=String(254), nullable=False)
    status: PharmacyStatus = Field(sa_type=EnumText(PharmacyStatus), nullable=False)
    certified_at: datetime | None = _utc(nullable=True)
    # Indexed: the renewal and expiry sweeps select only the rows coming due.
    certified_until: datetime | None = _utc(nullable=True, index=True)
    status_changed_at: datetime = _utc()
    status_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)
    created_at: datetime = _utc()


class User(SQLModel, table=True):
    """Someone who calls the API. Only the SHA-256 of the bearer token is kept."""

    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_type=String(200), nullable=False)
    role: UserRole = Field(sa_type=EnumText(UserRole), nullable=False)
    prescriber_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("prescribers.id"), nullable=True, index=True)
    )
    pharmacy_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("pharmacies.id"), nullable=True, index=True)
    )
    training_completed_at: datetime | None = _utc(nullable=True)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = _utc()
    #: When an admin disabled the user (None: active). A disabled user's tokens and
    #: portal sessions are refused from the next request on (``Repository.actor_by_token_hash``
    #: and ``Repository.actor_by_user_id``).
    disabled_at: datetime | None = _utc(nullable=True)
    #: When the current token stops working (None: it does not expire).
    token_expires_at: datetime | None = _utc(nullable=True)
    #: When an admin last replaced the token (the old one is refused from then on).
    token_rotated_at: datetime | None = _utc(nullable=True)
    #: Portal sign-in (UI.md): stored trimmed and lower-cased, so unique case-insensitively.
    email: str | None = Field(default=None, sa_column=Column(String(254), nullable=True, unique=True, index=True))
    #: An Argon2id hash (salt and parameters inside); None for token-only API clients.
    password_hash: str | None = Field(default=None, sa_type=String(255), nullable=True)


class Patient(SQLModel, table=True):
    """An enrolled patient (R-PAT-1). Names and date of birth stay in this table:
    the audit log and the logs know the patient only by ``rems_patient_id``."""

    __tablename__ = "patients"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    rems_patient_id: str = Field(sa_column=Column(String(16), nullable=False, unique=True))
    prescriber_id: uuid.UUID = Field(sa_column=Column(ForeignKey("prescribers.id"), nullable=False, index=True))
    first_name: str = Field(sa_type=String(100), nullable=False)
    last_name: str = Field(sa_type=String(100), nullable=False)
    date_of_birth: date = Field(sa_type=Date, nullable=False)
    risk_category: RiskCategory = Field(sa_type=EnumText(RiskCategory), nullable=False)
    menstrual_cycle: MenstrualCycle | None = Field(default=None, sa_type=EnumText(MenstrualCycle), nullable=True)
    fnrp_reason: FnrpReason | None = Field(default=None, sa_type=EnumText(FnrpReason), nullable=True)
    guardian_name: str | None = Field(default=None, sa_type=String(200), nullable=True)
    status: PatientStatus = Field(sa_type=EnumText(PatientStatus), nullable=False)
    status_changed_at: datetime = _utc()
    status_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)
    therapy_started_at: datetime | None = _utc(nullable=True)
    # Mirrors for reminders only (never read by a decision): when the next
    # pregnancy test and survey are due. Indexed so the sweeps read due rows only.
    next_test_due_at: datetime | None = _utc(nullable=True, index=True)
    next_survey_due_at: datetime | None = _utc(nullable=True, index=True)
    enrolled_at: datetime = _utc()
    created_at: datetime = _utc()


class PregnancyTestRecord(SQLModel, table=True):
    """A pregnancy test result entered by the patient's prescriber (R-PREG-1 to R-PREG-5)."""

    __tablename__ = "pregnancy_tests"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("patients.id"), nullable=False))
    collected_at: datetime = _utc()
    result: PregnancyResult = Field(sa_type=EnumText(PregnancyResult), nullable=False)
    sensitivity_miu_ml: int = Field(sa_type=Integer, nullable=False)
    recorded_at: datetime = _utc()
    recorded_by: uuid.UUID | None = Field(default=None, nullable=True)

    __table_args__ = (Index("ix_pregnancy_tests_patient_collected", "patient_id", "collected_at"),)


class PatientSurvey(SQLModel, table=True):
    """A confidential patient survey (R-SURV-1, R-SURV-2)."""

    __tablename__ = "patient_surveys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("patients.id"), nullable=False))
    completed_at: datetime = _utc()
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    noncompliance: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    recorded_at: datetime = _utc()
    recorded_by: uuid.UUID | None = Field(default=None, nullable=True)

    __table_args__ = (Index("ix_patient_surveys_patient_completed", "patient_id", "completed_at"),)


class AuditEntry(SQLModel, table=True):
    """One link of the append-only, hash-chained audit log (R-AUD-1, R-AUD-2).

    ``hash`` covers every other column, so editing any of them, or removing,
    reordering or inserting entries, is detected by verification. Patients
    appear only by REMS patient id (R-AUD-3).
    """

    __tablename__ = "audit_entries"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    recorded_at: datetime = _utc()
    effective_at: datetime = _utc()
    actor_user_id: uuid.UUID | None = Field(default=None, nullable=True)
    actor_role: str = Field(sa_type=String(20), nullable=False)
    action: str = Field(sa_type=String(64), nullable=False)
    outcome: str = Field(sa_type=String(16), nullable=False)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON, nullable=False)
    program_version: str | None = Field(default=None, sa_type=String(32), nullable=True)
    subject: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    prescriber_id: uuid.UUID | None = Field(default=None, nullable=True)
    pharmacy_id: uuid.UUID | None = Field(default=None, nullable=True)
    rems_patient_id: str | None = Field(default=None, sa_type=String(32), nullable=True)
    inputs_digest: str = Field(sa_type=String(64), nullable=False)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    prev_hash: str = Field(sa_type=String(64), nullable=False)
    hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    #: HMAC-SHA256 of ``hash`` under the audit key, which the database never holds
    #: (``audit_mac``); None only on entries written before revision 0011.
    mac: str | None = Field(default=None, sa_type=String(64), nullable=True)

    __table_args__ = (
        # The auditor filters, newest first (seq descending within the filter).
        Index("ix_audit_entries_action_seq", "action", "seq"),
        Index("ix_audit_entries_outcome_seq", "outcome", "seq"),
        Index("ix_audit_entries_prescriber_seq", "prescriber_id", "seq"),
        Index("ix_audit_entries_pharmacy_seq", "pharmacy_id", "seq"),
        Index("ix_audit_entries_rems_patient_seq", "rems_patient_id", "seq"),
        Index("ix_audit_entries_effective_at", "effective_at"),
    )


#: Primary key of the one chain-head row (created by the first migration).
CHAIN_HEAD_ID = 1


class AuditChainHead(SQLModel, table=True):
    """The single row naming the chain's last entry; locking it serializes appends."""

    __tablename__ = "audit_chain_head"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(sa_type=String(64), nullable=False)


class OutboxEvent(SQLModel, table=True):
    """A domain event written in the transaction that caused it (transactional outbox).

    The relay hands unsent rows to the job queue and stamps ``sent_at``;
    handlers dedupe on ``id``.
    """

    __tablename__ = "outbox_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    type: str = Field(sa_type=String(64), nullable=False)
    occurred_at: datetime = _utc()
    created_at: datetime = _utc()
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    sent_at: datetime | None = _utc(nullable=True)
    attempts: int = Field(default=0, nullable=False)
    last_error: str | None = Field(default=None, sa_type=Text, nullable=True)

    __table_args__ = (Index("ix_outbox_events_unsent", "sent_at", "created_at"),)


class DecisionRecord(SQLModel, table=True):
    """A recorded authorization or dispense decision, approved or denied (R-AUD-1).

    ``snapshot`` is the canonical JSON of everything the decision read (no
    names, no dates of birth); the audit entry ``audit_seq`` digests it, and
    ``rems audit replay`` decides again from it under ``program_version``.
    """

    __tablename__ = "decisions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(sa_type=String(20), nullable=False)
    outcome: str = Field(sa_type=String(16), nullable=False)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON, nullable=False)
    evaluated_at: datetime = _utc()
    valid_until: datetime | None = _utc(nullable=True)
    program_version: str = Field(sa_type=String(32), nullable=False)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    actor_user_id: uuid.UUID | None = Field(default=None, nullable=True)
    prescriber_id: uuid.UUID | None = Field(default=None, nullable=True)
    pharmacy_id: uuid.UUID | None = Field(default=None, nullable=True)
    patient_id: uuid.UUID | None = Field(default=None, nullable=True)
    rems_patient_id: str | None = Field(default=None, sa_type=String(32), nullable=True)
    audit_seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    created_at: datetime = _utc()
    #: The front the request came through (``workflows.audit.CHANNELS``; migration 0007).
    channel: str = Field(default="api", sa_column=Column(String(16), nullable=False, server_default="api"))
    #: SHA-256 of the raw standard message (NCPDP, FHIR, CDS Hooks); the message is never stored.
    message_digest: str | None = Field(default=None, sa_type=String(64), nullable=True)


class Authorization(SQLModel, table=True):
    """A prescription authorization (R-AUTH-1 to R-AUTH-4): bound to one patient,
    one prescriber and the authorized days' supply; single use."""

    __tablename__ = "authorizations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    number: str = Field(sa_column=Column(String(24), nullable=False, unique=True))
    patient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("patients.id"), nullable=False))
    prescriber_id: uuid.UUID = Field(sa_column=Column(ForeignKey("prescribers.id"), nullable=False, index=True))
    rems_patient_id: str = Field(sa_type=String(16), nullable=False)
    risk_category: RiskCategory = Field(sa_type=EnumText(RiskCategory), nullable=False)
    days_supply: int = Field(sa_type=Integer, nullable=False)
    quantity: int = Field(sa_type=Integer, nullable=False)
    strength_mg: float = Field(nullable=False)
    status: AuthorizationStatus = Field(sa_type=EnumText(AuthorizationStatus), nullable=False)
    issued_at: datetime = _utc()
    # Indexed: the expiry sweep selects only the authorizations coming due.
    expires_at: datetime = _utc(index=True)
    status_changed_at: datetime = _utc()
    status_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)
    decision_id: uuid.UUID = Field(sa_column=Column(ForeignKey("decisions.id"), nullable=False))

    __table_args__ = (Index("ix_authorizations_patient_status", "patient_id", "status"),)


#: Dispense statuses that hold their authorization: at most one per authorization (R-DISP-5).
_HOLDING = "status IN ('confirmed', 'dispensed')"


class Dispense(SQLModel, table=True):
    """A dispense authorization (confirmation) and, once completed, the recorded dispense.

    The partial unique index is R-DISP-5's backstop on every backend: one
    authorization has at most one confirmation that is live or completed.
    """

    __tablename__ = "dispenses"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    confirmation_number: str = Field(sa_column=Column(String(24), nullable=False, unique=True))
    authorization_id: uuid.UUID = Field(sa_column=Column(ForeignKey("authorizations.id"), nullable=False))
    pharmacy_id: uuid.UUID = Field(sa_column=Column(ForeignKey("pharmacies.id"), nullable=False, index=True))
    pharmacist_user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    patient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("patients.id"), nullable=False))
    rems_patient_id: str = Field(sa_type=String(16), nullable=False)
    days_supply: int = Field(sa_type=Integer, nullable=False)
    quantity: int = Field(sa_type=Integer, nullable=False)
    status: DispenseStatus = Field(sa_type=EnumText(DispenseStatus), nullable=False)
    confirmed_at: datetime = _utc()
    # Indexed: the lapse sweep selects only the confirmations coming due.
    confirmation_expires_at: datetime = _utc(index=True)
    dispensed_at: datetime | None = _utc(nullable=True)
    status_changed_at: datetime = _utc()
    status_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)
    decision_id: uuid.UUID = Field(sa_column=Column(ForeignKey("decisions.id"), nullable=False))

    __table_args__ = (
        Index(
            "uq_dispenses_one_holding_per_authorization",
            "authorization_id",
            unique=True,
            sqlite_where=text(_HOLDING),
            postgresql_where=text(_HOLDING),
        ),
        Index("ix_dispenses_patient_dispensed", "patient_id", "dispensed_at"),
    )


class IdempotencyKey(SQLModel, table=True):
    """A client's ``Idempotency-Key`` (API.md): claimed before the request runs,
    completed with the exact response in the transaction that made the decision."""

    __tablename__ = "idempotency_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    scope: str = Field(sa_type=String(64), nullable=False)
    endpoint: str = Field(sa_type=String(64), nullable=False)
    key: str = Field(sa_type=String(255), nullable=False)
    request_digest: str = Field(sa_type=String(64), nullable=False)
    response_status: int | None = Field(default=None, sa_type=Integer, nullable=True)
    response_body: str | None = Field(default=None, sa_type=Text, nullable=True)
    created_at: datetime = _utc()
    completed_at: datetime | None = _utc(nullable=True)

    __table_args__ = (UniqueConstraint("scope", "endpoint", "key", name="uq_idempotency_keys_scope_endpoint_key"),)


class AuditReasonCode(SQLModel, table=True):
    """One reason code of one audit entry: what the auditor's ``reason=`` filter
    reads through its ``(code, seq)`` index instead of scanning JSON."""

    __tablename__ = "audit_reason_codes"

    code: str = Field(sa_column=Column(String(64), primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, ForeignKey("audit_entries.seq"), primary_key=True))


class AuditSubjectRef(SQLModel, table=True):
    """One reference an audit entry names (``kind``: a REMS patient id, an authorization
    or a confirmation number; ``value`` in canonical form): what the auditor's
    ``rems_patient_id=``, ``authorization_number=`` and ``confirmation_number=`` filters
    read through the ``(kind, value, seq)`` key. Derived from the entry's subject and
    details (``audit_chain.subject_refs``), never hashed: the entry is the record."""

    __tablename__ = "audit_subject_refs"

    kind: str = Field(sa_column=Column(String(32), primary_key=True))
    value: str = Field(sa_column=Column(String(64), primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, ForeignKey("audit_entries.seq"), primary_key=True))


class AuditCheckpoint(SQLModel, table=True):
    """A point up to which the chain was verified, so the next verification can
    start there (``GET /audit/verify?incremental=true``)."""

    __tablename__ = "audit_checkpoints"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    hash: str = Field(sa_type=String(64), nullable=False)
    verified_at: datetime = _utc()
    #: HMAC-SHA256 of ``seq`` and ``hash`` under the audit key: an incremental verification
    #: starts only from a checkpoint the service made (None before revision 0011: not trusted).
    mac: str | None = Field(default=None, sa_type=String(64), nullable=True)


class ProcessedEvent(SQLModel, table=True):
    """An outbox event whose handler has run: handlers dedupe on the event id,
    so a relay that re-sends after a crash changes nothing twice."""

    __tablename__ = "processed_events"

    event_id: uuid.UUID = Field(primary_key=True)
    handled_at: datetime = _utc()


class Notice(SQLModel, table=True):
    """A reminder already given (``key`` names its subject and occasion), so a
    sweep that runs every minute tells a prescriber once, not every minute."""

    __tablename__ = "notices"

    key: str = Field(sa_column=Column(String(200), primary_key=True))
    created_at: datetime = _utc()


class WebhookSubscription(SQLModel, table=True):
    """Where to POST which events (API.md, Webhooks). A prescriber's or a
    pharmacy's subscription receives only events about its own patients or
    pharmacy; an admin's receives every matching event."""

    __tablename__ = "webhook_subscriptions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    url: str = Field(sa_type=String(2000), nullable=False)
    events: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    secret: str = Field(sa_type=String(100), nullable=False)
    prescriber_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("prescribers.id"), nullable=True))
    pharmacy_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("pharmacies.id"), nullable=True))
    created_by: uuid.UUID | None = Field(default=None, nullable=True)
    created_at: datetime = _utc()
    deleted_at: datetime | None = _utc(nullable=True)
    #: A rotated-out secret still signing ``X-Rems-Timestamped-Signature`` until it expires.
    previous_secret: str | None = Field(default=None, sa_type=String(100), nullable=True)
    previous_secret_expires_at: datetime | None = _utc(nullable=True)
    secret_rotated_at: datetime | None = _utc(nullable=True)


class WebhookDelivery(SQLModel, table=True):
    """One event owed to one subscription; ``body`` is the exact signed payload,
    resent unchanged on every attempt (receivers dedupe on its ``id``)."""

    __tablename__ = "webhook_deliveries"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subscription_id: uuid.UUID = Field(sa_column=Column(ForeignKey("webhook_subscriptions.id"), nullable=False))
    event_id: uuid.UUID = Field(nullable=False)
    event_type: str = Field(sa_type=String(64), nullable=False)
    body: str = Field(sa_type=Text, nullable=False)
    status: str = Field(sa_type=String(16), nullable=False)
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at: datetime | None = _utc(nullable=True)
    delivered_at: datetime | None = _utc(nullable=True)
    last_status_code: int | None = Field(default=None, nullable=True)
    last_error: str | None = Field(default=None, sa_type=Text, nullable=True)
    created_at: datetime = _utc()
    #: The last attempt's coarse outcome (``webhook_transport.OUTCOMES``), what subscribers see.
    last_outcome: str | None = Field(default=None, sa_type=String(16), nullable=True)

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_subscription_event"),
        # The retry sweep reads only deliveries that are due.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_subscription_created", "subscription_id", "created_at"),
    )


class WebhookAttempt(SQLModel, table=True):
    """The delivery log: every attempt, its answer or error, and how long it took."""

    __tablename__ = "webhook_attempts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    delivery_id: uuid.UUID = Field(sa_column=Column(ForeignKey("webhook_deliveries.id"), nullable=False, index=True))
    attempt: int = Field(nullable=False)
    attempted_at: datetime = _utc()
    status_code: int | None = Field(default=None, nullable=True)
    error: str | None = Field(default=None, sa_type=Text, nullable=True)
    duration_ms: int = Field(default=0, nullable=False)
    #: The coarse outcome (``webhook_transport.OUTCOMES``); ``error`` is for operators only.
    outcome: str | None = Field(default=None, sa_type=String(16), nullable=True)


# -- CLINICAL_RULES.md: treatment courses and lab results ---------------------------------------

#: A patient has at most one course that is not stopped.
_LIVE_COURSE = "status != 'stopped'"


class TreatmentCourse(SQLModel, table=True):
    """A patient's lenalidomide course, set by the prescriber (CLINICAL_RULES.md).

    ``holds`` lists every hold as ``{"start", "end"}`` (ISO instants, ``end`` null while it
    lasts): the decision reads the cycle position from this row alone.
    """

    __tablename__ = "treatment_courses"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("patients.id"), nullable=False))
    prescriber_id: uuid.UUID = Field(sa_column=Column(ForeignKey("prescribers.id"), nullable=False, index=True))
    regimen: Regimen = Field(sa_type=EnumText(Regimen), nullable=False)
    start_date: date = Field(sa_type=Date, nullable=False)
    dose_mg: float = Field(nullable=False)
    dose_every_days: int = Field(sa_type=Integer, nullable=False, default=1)
    days_on: int = Field(sa_type=Integer, nullable=False)
    cycle_length_days: int = Field(sa_type=Integer, nullable=False)
    thromboprophylaxis: str | None = Field(default=None, sa_type=String(200), nullable=True)
    on_dialysis: bool = Field(default=False, nullable=False)
    weight_kg: float | None = Field(default=None, nullable=True)
    status: CourseStatus = Field(sa_type=EnumText(CourseStatus), nullable=False)
    status_changed_at: datetime = _utc()
    status_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)
    status_reason_code: str | None = Field(default=None, sa_type=String(32), nullable=True)
    holds: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON, nullable=False)
    created_at: datetime = _utc()
    created_by: uuid.UUID | None = Field(default=None, nullable=True)

    __table_args__ = (
        Index(
            "uq_treatment_courses_one_live_per_patient",
            "patient_id",
            unique=True,
            sqlite_where=text(_LIVE_COURSE),
            postgresql_where=text(_LIVE_COURSE),
        ),
        Index("ix_treatment_courses_patient_created", "patient_id", "created_at"),
    )


class TreatmentCourseEvent(SQLModel, table=True):
    """One change of a course: started, held, resumed, dose changed, stopped, with its coded
    reason and the lab results behind it (the audit entry records the same change)."""

    __tablename__ = "treatment_course_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    course_id: uuid.UUID = Field(sa_column=Column(ForeignKey("treatment_courses.id"), nullable=False))
    #: 1, 2, … within the course (written under the course's row lock): the order of changes
    #: made at the same instant.
    seq: int = Field(sa_type=Integer, nullable=False)
    event: str = Field(sa_type=String(40), nullable=False)
    at: datetime = _utc()
    from_state: str | None = Field(default=None, sa_type=String(16), nullable=True)
    to_state: str = Field(sa_type=String(16), nullable=False)
    reason_code: str | None = Field(default=None, sa_type=String(32), nullable=True)
    reason: str | None = Field(default=None, sa_type=String(500), nullable=True)
    from_dose_mg: float | None = Field(default=None, nullable=True)
    to_dose_mg: float | None = Field(default=None, nullable=True)
    lab_result_ids: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    actor_user_id: uuid.UUID | None = Field(default=None, nullable=True)

    __table_args__ = (
        UniqueConstraint("course_id", "seq", name="uq_treatment_course_events_course_seq"),
        Index("ix_treatment_course_events_course_at", "course_id", "at"),
    )


class LabResult(SQLModel, table=True):
    """A lab result by LOINC code: as sent (``value``, ``unit``) and in the code's canonical unit,
    which the advisories read. Values stay out of logs, events and audit entries."""

    __tablename__ = "lab_results"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("patients.id"), nullable=False))
    loinc: str = Field(sa_type=String(16), nullable=False)
    value: float = Field(nullable=False)
    unit: str = Field(sa_type=String(40), nullable=False)
    canonical_value: float = Field(nullable=False)
    canonical_unit: str = Field(sa_type=String(40), nullable=False)
    collected_at: datetime = _utc()
    reference_low: float | None = Field(default=None, nullable=True)
    reference_high: float | None = Field(default=None, nullable=True)
    source: str | None = Field(default=None, sa_type=String(200), nullable=True)
    recorded_at: datetime = _utc()
    recorded_by: uuid.UUID | None = Field(default=None, nullable=True)

    __table_args__ = (Index("ix_lab_results_patient_loinc_collected", "patient_id", "loinc", "collected_at"),)
