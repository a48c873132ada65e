"""PostgreSQL's short path for recording a decision: its facts in two statements, its
writes in two (issue 16; ``bench/README.md`` lists every statement and why).

The facts: the locking statement (``Repository.lock_by_number`` / ``lock_patient``)
and then one read of everything else (``read_dispense_facts`` /
``read_authorization_facts``), each piece a lateral subquery, so a read made
after the lock sees what a concurrent decision committed before it. The writes:
``lock_head`` takes the chain head's row lock and the database's clock (with the
authorization's change of a dispense approval in a data-modifying CTE), and
``write`` inserts the audit entry with its index rows, moves the head, inserts the
decision, its outbox event, the confirmation or authorization the decision issued
and stores the idempotent response, in one statement of data-modifying CTEs.

Every value is bound through its column's own type (``bindparam(type_=column.type)``),
so what is stored is byte for byte what the ORM path (SQLite) stores: canonical JSON,
UTC instants, enum values. SQLite keeps the ORM path.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, TypeVar

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Dialect, Table, TextClause, bindparam, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from workflows.advisories import LabValue
from workflows.clinical_params import Regimen
from workflows.courses import CourseStatus
from workflows.dispenses import DispenseStatus, PharmacistFacts, PharmacyFacts, PriorDispense
from workflows.labs import ADVISORY_CODES, RESPONSE_CODES
from workflows.participants import PharmacyStatus, PrescriberStatus
from workflows.patients import RiskCategory
from workflows.surveys import is_complete as survey_is_complete
from workflows.testing import PregnancyResult, PregnancyTest

from .models import (
    CHAIN_HEAD_ID,
    AuditEntry,
    Authorization,
    DecisionRecord,
    Dispense,
    OutboxEvent,
    Patient,
    table_of,
)
from .types import UTCDateTime

RowT = TypeVar("RowT")

_PATIENTS = table_of(Patient)
_AUTHORIZATIONS = table_of(Authorization)
_ENTRIES = table_of(AuditEntry)
_DECISIONS = table_of(DecisionRecord)
_EVENTS = table_of(OutboxEvent)
_DISPENSES = table_of(Dispense)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _instant(text_value: str | None) -> datetime | None:
    """An instant PostgreSQL rendered into JSON (ISO 8601 with an offset), in UTC."""
    return None if text_value is None else datetime.fromisoformat(text_value).astimezone(UTC)


# -- running a statement ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled once for the connection's dialect: its SQL text and, per bind
    parameter, the type's bind processor (what SQLAlchemy applies before the driver)."""

    sql: str
    processors: dict[str, Callable[[Any], Any]]
    #: Held so that its ``id`` (the cache's key) is never reused by another statement.
    statement: TextClause


_COMPILED: dict[tuple[int, str], _Compiled] = {}


def _compiled(statement: TextClause, dialect: Dialect) -> _Compiled:
    key = (id(statement), dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        found = _COMPILED[key] = _Compiled(compiled.string, processors, statement)
    return found


def _one(session: Session, statement: TextClause, params: dict[str, Any]) -> Any:
    """Execute ``statement`` on the unit of work's connection through the driver's cursor
    (psycopg) and return its one row, as a named tuple.

    The statement was compiled once (``_compiled``; the statements are module constants)
    and each value goes through its type's bind processor, so the driver receives what
    SQLAlchemy would send; what is skipped is SQLAlchemy's per-execution work (execution
    context, result metadata), which cost these statements more CPU than PostgreSQL spent
    running them (``bench/README.md``). The engine's ``before_cursor_execute`` listeners
    still see each statement; a driver error is raised as SQLAlchemy's (``IntegrityError``,
    ``OperationalError``…), and a connection found broken is invalidated, as SQLAlchemy
    would do."""
    connection = session.connection()
    compiled = _compiled(statement, connection.dialect)
    processors = compiled.processors
    values = {
        name: (processors[name](value) if value is not None and name in processors else value)
        for name, value in params.items()
    }
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor(row_factory=namedtuple_row) as cursor:
        connection.dispatch.before_cursor_execute(connection, cursor, compiled.sql, values, None, False)
        try:
            cursor.execute(compiled.sql, values)
            return cursor.fetchone()
        except psycopg.Error as exc:
            broken = bool(driver.broken)
            if broken:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                compiled.sql, None, exc, psycopg.Error, hide_parameters=True, connection_invalidated=broken
            ) from exc


# -- the caller -----------------------------------------------------------------------------------

#: ``Repository.actor_by_token_hash``: every request's first statement (its caller's role,
#: pharmacy, prescriber and training).
_ACTOR_BY_TOKEN = text(
    "SELECT id, role, prescriber_id, pharmacy_id, training_completed_at FROM users "
    "WHERE token_hash = :token_hash AND disabled_at IS NULL "
    "AND (token_expires_at IS NULL OR token_expires_at > :now)"
).bindparams(bindparam("now", type_=UTCDateTime()))


def actor_by_token_hash(session: Session, token_hash: str, now: datetime) -> dict[str, Any] | None:
    """The ``Actor`` fields of the user holding the token hashed ``token_hash``, or None
    (no such user, disabled, or its token expired by ``now``)."""
    row = _one(session, _ACTOR_BY_TOKEN, {"token_hash": token_hash, "now": now})
    if row is None:
        return None
    return {
        "user_id": row.id,
        "role": row.role,
        "prescriber_id": row.prescriber_id,
        "pharmacy_id": row.pharmacy_id,
        "training_completed_at": _utc(row.training_completed_at),
    }


# -- the facts ----------------------------------------------------------------------------------

#: The patient's pieces, shared by both reads: pregnancy tests, and the course (the live one,
#: else the newest stopped) with the advisory labs (read only for a patient with a course).
_PATIENT_LATERALS = """
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_array(t.collected_at, t.result, t.sensitivity_miu_ml)
                    ORDER BY t.collected_at, t.id) AS tests
    FROM pregnancy_tests t WHERE t.patient_id = :patient_id
) tests ON true
LEFT JOIN LATERAL (
    SELECT to_json(c) AS course FROM treatment_courses c
    WHERE c.patient_id = :patient_id
    ORDER BY c.status = 'stopped', c.created_at DESC LIMIT 1
) course ON true
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_array(r.loinc, r.canonical_value, r.canonical_unit, r.collected_at)
                    ORDER BY r.collected_at, r.loinc) AS labs
    FROM (
        SELECT l.loinc, l.canonical_value, l.canonical_unit, l.collected_at,
               row_number() OVER (PARTITION BY l.loinc ORDER BY l.collected_at DESC, l.recorded_at DESC) AS rank
        FROM lab_results l
        WHERE course.course IS NOT NULL AND l.patient_id = :patient_id AND l.loinc = ANY(:advisory_codes)
    ) r
    WHERE r.rank = 1 OR r.loinc = ANY(:response_codes)
) labs ON true
"""

_DISPENSE_FACTS = text(
    """
SELECT ph.status AS pharmacy_status, ph.certified_until, u.training_completed_at,
       h.id AS holding_id, prior.dispensed_at AS prior_dispensed_at, prior.days_supply AS prior_days_supply,
       tests.tests, course.course, labs.labs
FROM (SELECT 1) AS one
LEFT JOIN pharmacies ph ON ph.id = :pharmacy_id
LEFT JOIN users u ON u.id = :user_id
LEFT JOIN dispenses h ON h.authorization_id = :authorization_id AND h.status = :confirmed
LEFT JOIN LATERAL (
    SELECT d.dispensed_at, d.days_supply FROM dispenses d
    WHERE d.patient_id = :patient_id AND d.status = :dispensed
    ORDER BY d.dispensed_at DESC LIMIT 1
) prior ON true
"""
    + _PATIENT_LATERALS
)

_AUTHORIZATION_FACTS = text(
    """
SELECT pr.status AS prescriber_status, surveys.surveys, tests.tests, course.course, labs.labs
FROM (SELECT 1) AS one
LEFT JOIN prescribers pr ON pr.id = :prescriber_id
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_array(s.completed_at, s.answers) ORDER BY s.completed_at DESC, s.id) AS surveys
    FROM patient_surveys s WHERE s.patient_id = :patient_id
) surveys ON true
"""
    + _PATIENT_LATERALS
)


@dataclass(frozen=True)
class PatientPieces:
    """A patient's tests, course and advisory labs as the ORM path would read them."""

    tests: tuple[PregnancyTest, ...]
    #: The course row's columns as ``repository.course_facts`` reads them (attributes).
    course: Any | None
    labs: tuple[LabValue, ...]


@dataclass(frozen=True)
class DispenseFacts:
    pharmacy: PharmacyFacts
    pharmacist: PharmacistFacts
    #: The authorization's confirmation in stored status ``confirmed``, if any (loaded whole
    #: by the caller: only then is a second statement needed).
    holding_id: uuid.UUID | None
    prior: PriorDispense | None
    patient: PatientPieces | None


@dataclass(frozen=True)
class AuthorizationFacts:
    prescriber_status: PrescriberStatus
    last_survey_at: datetime | None
    patient: PatientPieces


def _codes() -> dict[str, Any]:
    return {"advisory_codes": list(ADVISORY_CODES), "response_codes": list(RESPONSE_CODES)}


def read_dispense_facts(
    session: Session,
    pharmacy_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    authorization_id: uuid.UUID | None,
    patient_id: uuid.UUID | None,
) -> DispenseFacts:
    """Everything a dispense decision reads besides the locked rows, in one statement.
    ``patient_id`` None (the authorization is not the presented patient's) reads no patient
    fact; ``authorization_id`` None (no authorization has the number) reads no holding."""
    row = _one(
        session,
        _DISPENSE_FACTS,
        {
            "pharmacy_id": pharmacy_id,
            "user_id": user_id,
            "authorization_id": authorization_id,
            "patient_id": patient_id,
            "confirmed": DispenseStatus.CONFIRMED.value,
            "dispensed": DispenseStatus.DISPENSED.value,
            **_codes(),
        },
    )
    prior = None
    if patient_id is not None and row.prior_dispensed_at is not None:
        prior = PriorDispense(_utc(row.prior_dispensed_at), row.prior_days_supply)  # type: ignore[arg-type]
    return DispenseFacts(
        pharmacy=PharmacyFacts(
            pharmacy_id=str(pharmacy_id),
            status=PharmacyStatus(row.pharmacy_status) if row.pharmacy_status else PharmacyStatus.DECERTIFIED,
            certified_until=_utc(row.certified_until),
        ),
        pharmacist=PharmacistFacts(user_id=str(user_id), training_completed_at=_utc(row.training_completed_at)),
        holding_id=row.holding_id,
        prior=prior,
        patient=_patient_pieces(row) if patient_id is not None else None,
    )


def read_authorization_facts(
    session: Session, patient_id: uuid.UUID, risk_category: RiskCategory, prescriber_id: uuid.UUID | None
) -> AuthorizationFacts:
    """Everything an authorization decision reads besides the locked patient, in one
    statement. An unknown prescriber reads as decertified; the newest *complete* survey
    counts (R-SURV-3)."""
    row = _one(session, _AUTHORIZATION_FACTS, {"patient_id": patient_id, "prescriber_id": prescriber_id, **_codes()})
    complete = (
        _instant(completed_at)
        for completed_at, answers in (row.surveys or ())
        if survey_is_complete(risk_category, answers)
    )
    return AuthorizationFacts(
        prescriber_status=PrescriberStatus(row.prescriber_status)
        if row.prescriber_status
        else PrescriberStatus.DECERTIFIED,
        last_survey_at=next(complete, None),
        patient=_patient_pieces(row),
    )


def _patient_pieces(row: Any) -> PatientPieces:
    tests = tuple(
        PregnancyTest(_instant(collected), PregnancyResult(result), int(sensitivity))  # type: ignore[arg-type]
        for collected, result, sensitivity in (row.tests or ())
    )
    course = None
    labs: tuple[LabValue, ...] = ()
    if row.course is not None:
        course = _course_row(row.course)
        labs = tuple(
            LabValue(loinc, float(value), unit, _instant(collected))  # type: ignore[arg-type]
            for loinc, value, unit, collected in (row.labs or ())
        )
    return PatientPieces(tests, course, labs)


def _course_row(data: Mapping[str, Any]) -> Any:
    """A course row as ``repository.course_facts`` reads it, from the row's JSON
    (PostgreSQL's ``to_json``): typed as the ORM would load it."""
    return SimpleNamespace(
        id=uuid.UUID(data["id"]),
        regimen=Regimen(data["regimen"]),
        start_date=date.fromisoformat(data["start_date"]),
        dose_mg=data["dose_mg"],
        dose_every_days=data["dose_every_days"],
        days_on=data["days_on"],
        cycle_length_days=data["cycle_length_days"],
        status=CourseStatus(data["status"]),
        status_reason_code=data["status_reason_code"],
        status_changed_at=_instant(data["status_changed_at"]),
        thromboprophylaxis=data["thromboprophylaxis"],
        on_dialysis=data["on_dialysis"],
        # JSON renders a whole double as an integer (70.0 as 70): the ORM loads a float.
        weight_kg=None if data["weight_kg"] is None else float(data["weight_kg"]),
        holds=data["holds"] if not isinstance(data["holds"], str) else json.loads(data["holds"]),
    )


# -- the locking statement -----------------------------------------------------------------------

#: ``Repository.lock_by_number``'s statement: lock order patient, then authorization (PostgreSQL
#: locks each joined row in the order ``FOR UPDATE OF`` names the tables).
_LOCK_BY_NUMBER = text(
    f"SELECT {', '.join(f'p.{c.name} AS p_{c.name}' for c in _PATIENTS.c)}, "
    f"{', '.join(f'a.{c.name} AS a_{c.name}' for c in _AUTHORIZATIONS.c)} "
    "FROM patients p JOIN authorizations a ON a.patient_id = p.id WHERE a.number = :number "
    "FOR UPDATE OF p, a"
)
_PATIENT_TYPES = [(c.name, c.type) for c in _PATIENTS.c]
_AUTHORIZATION_TYPES = [(c.name, c.type) for c in _AUTHORIZATIONS.c]


def _loaded(
    row_type: type[RowT], names_types: Sequence[tuple[str, Any]], values: Sequence[Any], dialect: Dialect
) -> RowT:
    """A row object holding ``values`` (in column order) as if the ORM had loaded it — each
    value through its column type's result processor — outside any session: the short path
    writes through its own statements, so it needs none of the ORM's per-row machinery
    (identity map, loading events). Attribute reads and writes work as on any entity."""
    configure_mappers()  # a no-op once the mappers are configured
    row: RowT = manager_of_class(row_type).new_instance()
    state: dict[str, Any] = {}
    for (name, column_type), value in zip(names_types, values, strict=True):
        process = _result_processor(column_type, dialect)
        state[name] = process(value) if process is not None else value
    row.__dict__.update(state)
    object.__setattr__(row, "__pydantic_fields_set__", set(state))
    object.__setattr__(row, "__pydantic_extra__", None)
    object.__setattr__(row, "__pydantic_private__", None)
    return row


_RESULT_PROCESSORS: dict[tuple[int, str], Any] = {}


def _result_processor(column_type: Any, dialect: Dialect) -> Any:
    key = (id(column_type), dialect.name)
    if key not in _RESULT_PROCESSORS:
        # The service's own column types (UTC instants, enums) convert what the driver returns;
        # psycopg already returns the Python value of every other type (UUID, numbers, dates).
        _RESULT_PROCESSORS[key] = (
            column_type.result_processor(dialect, None) if isinstance(column_type, TypeDecorator) else None
        )
    return _RESULT_PROCESSORS[key]


def lock_by_number(session: Session, number: str) -> tuple[Patient | None, Authorization | None]:
    """``Repository.lock_by_number`` for the short path: one statement, the same lock order;
    the rows built without the ORM's loading (``_loaded``); ``(None, None)`` when no
    authorization has that number."""
    row = _one(session, _LOCK_BY_NUMBER, {"number": number})
    if row is None:
        return None, None
    dialect = session.get_bind().dialect
    split = len(_PATIENT_TYPES)
    return (
        _loaded(Patient, _PATIENT_TYPES, row[:split], dialect),
        _loaded(Authorization, _AUTHORIZATION_TYPES, row[split:], dialect),
    )


# -- the writes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationChange:
    """A dispense approval's change of its authorization (``issued → confirmed``)."""

    authorization_id: uuid.UUID
    status: str
    at: datetime


#: Bind names are short (``e0``, ``d3``…) and the decision and outbox rows take the values
#: they share with the audit entry from the entry's own parameters: psycopg caches the
#: conversion of a statement only up to 50 parameters and 4,096 characters, and the write
#: would otherwise be converted again on every decision.
_SHARED_WITH_ENTRY = {
    # decisions column → audit_entries column holding the same value by construction
    "audit_seq": "seq",
    "created_at": "recorded_at",
    "evaluated_at": "effective_at",
    "outcome": "outcome",
    "program_version": "program_version",
    "actor_user_id": "actor_user_id",
}
#: Outbox columns written as constants or from the entry (an event of a decision occurs when
#: the decision is made and is written with it, unsent).
_EVENT_CONSTANTS = {"sent_at": "NULL", "attempts": "0", "last_error": "NULL"}
_EVENT_FROM_ENTRY = {"occurred_at": "effective_at", "created_at": "recorded_at"}


def _bind_names(table: Table, prefix: str, skip: Iterable[str] = ()) -> dict[str, str]:
    skipped = set(skip)
    names = [c.name for c in table.columns if c.name not in skipped]
    return {name: f"{prefix}{i}" for i, name in enumerate(names)}


def _values(table: Table, binds: Mapping[str, str], given: Mapping[str, str]) -> str:
    """The VALUES list of ``table``: a bind per column, or the SQL ``given`` for it."""
    return ", ".join(given[c.name] if c.name in given else ":" + binds[c.name] for c in table.columns)


def _into(table: Table) -> str:
    return f"INSERT INTO {table.name} ({', '.join(c.name for c in table.columns)})"


_STATUS = _AUTHORIZATIONS.c.status.type
_CHANGED_AT = _AUTHORIZATIONS.c.status_changed_at.type
_ISSUED_TABLES = {"dispense": _DISPENSES, "authorization": _AUTHORIZATIONS}

_ENTRY_BINDS = _bind_names(_ENTRIES, "e")
_DECISION_BINDS = _bind_names(_DECISIONS, "d", _SHARED_WITH_ENTRY)
_EVENT_BINDS = _bind_names(_EVENTS, "o", {**_EVENT_CONSTANTS, **_EVENT_FROM_ENTRY})


@cache
def _lock_head_statement(changes_authorization: bool) -> TextClause:
    lock = "SELECT seq, hash, clock_timestamp() AS now FROM audit_chain_head WHERE id = :head_id FOR UPDATE"
    if not changes_authorization:
        return text(lock)
    return text(
        "WITH confirm AS (UPDATE authorizations SET status = :a_status, status_changed_at = :a_at, "
        "status_reason = NULL WHERE id = :a_id RETURNING 1) "
        "SELECT seq, hash, clock_timestamp() AS now, (SELECT count(*) FROM confirm) AS changed "
        "FROM audit_chain_head WHERE id = :head_id FOR UPDATE"
    ).bindparams(bindparam("a_status", type_=_STATUS), bindparam("a_at", type_=_CHANGED_AT))


def lock_head(session: Session, change: AuthorizationChange | None) -> tuple[int, str, datetime]:
    """Lock the chain head and read it with the database's clock, in one statement that
    also stores ``change`` (before the entry, as the ORM path orders them)."""
    params: dict[str, Any] = {"head_id": CHAIN_HEAD_ID}
    if change is not None:
        params.update(a_id=change.authorization_id, a_status=change.status, a_at=change.at)
    row = _one(session, _lock_head_statement(change is not None), params)
    if change is not None and row.changed != 1:
        # The row is locked by the decision's own statement, so this cannot happen; if it did,
        # an approval must not be recorded for an authorization left as it was.
        raise RuntimeError("the authorization's change was not stored; nothing is recorded")
    return row.seq, row.hash, row.now.astimezone(UTC)


@cache
def _write_statement(issued: str | None, completes_claim: bool) -> TextClause:
    """The write of a decision: ``issued`` names the row it issues (``dispense``,
    ``authorization`` or None), ``completes_claim`` whether an idempotent response is stored.

    The issued row travels as one JSON object (``json_populate_record``: each value through
    its column type's input function; neither table has a JSON column)."""
    seq, entry_hash = ":" + _ENTRY_BINDS["seq"], ":" + _ENTRY_BINDS["hash"]
    from_entry = {column: ":" + _ENTRY_BINDS[source] for column, source in _SHARED_WITH_ENTRY.items()}
    event_given = {
        **_EVENT_CONSTANTS,
        **{column: ":" + _ENTRY_BINDS[source] for column, source in _EVENT_FROM_ENTRY.items()},
    }
    parts = [
        f"entry AS ({_into(_ENTRIES)} VALUES ({_values(_ENTRIES, _ENTRY_BINDS, {})}))",
        f"codes AS (INSERT INTO audit_reason_codes (code, seq) SELECT c, {seq} FROM unnest(CAST(:codes AS text[])) c)",
        "refs AS (INSERT INTO audit_subject_refs (kind, value, seq) SELECT r.k, r.v, "
        f"{seq} FROM unnest(CAST(:ref_kinds AS text[]), CAST(:ref_values AS text[])) r(k, v))",
        f"head AS (UPDATE audit_chain_head SET seq = {seq}, hash = {entry_hash} WHERE id = {CHAIN_HEAD_ID})",
        f"decision AS ({_into(_DECISIONS)} VALUES ({_values(_DECISIONS, _DECISION_BINDS, from_entry)}))",
        f"event AS ({_into(_EVENTS)} VALUES ({_values(_EVENTS, _EVENT_BINDS, event_given)}))",
    ]
    binds = [bindparam(_ENTRY_BINDS[c.name], type_=c.type) for c in _ENTRIES.columns]
    binds += [bindparam(_DECISION_BINDS[c.name], type_=c.type) for c in _DECISIONS.columns if c.name in _DECISION_BINDS]
    binds += [bindparam(_EVENT_BINDS[c.name], type_=c.type) for c in _EVENTS.columns if c.name in _EVENT_BINDS]
    if issued is not None:
        table = _ISSUED_TABLES[issued]
        parts.append(
            f"issued AS ({_into(table)} SELECT {', '.join('r.' + c.name for c in table.columns)} "
            f"FROM json_populate_record(NULL::{table.name}, CAST(:issued AS json)) r)"
        )
    final = "SELECT 1 AS stored"
    if completes_claim:
        parts.append(
            "claim AS (UPDATE idempotency_keys SET response_status = :i_status, response_body = :i_body, "
            f"completed_at = :{_ENTRY_BINDS['recorded_at']} WHERE id = :i_id AND created_at = :i_at "
            "AND response_body IS NULL RETURNING 1)"
        )
        final = "SELECT count(*) AS stored FROM claim"
        binds.append(bindparam("i_at", type_=_CHANGED_AT))
    return text("WITH " + ",\n".join(parts) + "\n" + final).bindparams(*binds)


def row_values(row: Any) -> dict[str, Any]:
    """An ORM row's column values (defaults applied), for ``write``."""
    return {c.name: getattr(row, c.name) for c in table_of(type(row)).columns}


def _issued_json(session: Session, table: Table, values: Mapping[str, Any]) -> str:
    """The issued row as the JSON object ``json_populate_record`` reads: each value bound
    through its column's type first (UTC instants, enum values), then as JSON text."""
    dialect = session.get_bind().dialect
    out: dict[str, Any] = {}
    for column in table.columns:
        value = values.get(column.name)
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        value = process(value) if process is not None and value is not None else value
        out[column.name] = value.isoformat() if isinstance(value, datetime) else value
    return json.dumps(out, default=str)


@dataclass(frozen=True)
class Claim:
    """The idempotency claim a decision completes: its row, the time it was claimed at
    (compare-and-set) and the response to store."""

    id: uuid.UUID
    created_at: datetime
    status: int
    body: str


def write(
    session: Session,
    entry: Mapping[str, Any],
    codes: Iterable[str],
    refs: Iterable[tuple[str, str]],
    decision: Mapping[str, Any],
    event: Mapping[str, Any],
    issued: tuple[str, Mapping[str, Any]] | None,
    claim: Claim | None,
) -> bool:
    """Store a decision's effects in one statement; False if ``claim`` was no longer held
    (the statement's effects must then be rolled back with the transaction)."""
    for column, source in _SHARED_WITH_ENTRY.items():
        assert decision[column] == entry[source], f"decisions.{column} differs from its audit entry's {source}"
    for column, source in _EVENT_FROM_ENTRY.items():
        assert event[column] == entry[source], f"outbox_events.{column} differs from its audit entry's {source}"
    assert event["sent_at"] is None and event["attempts"] == 0 and event["last_error"] is None
    refs = list(refs)
    params: dict[str, Any] = {bind: entry[name] for name, bind in _ENTRY_BINDS.items()}
    params.update({bind: decision[name] for name, bind in _DECISION_BINDS.items()})
    params.update({bind: event[name] for name, bind in _EVENT_BINDS.items()})
    params.update(codes=list(codes), ref_kinds=[k for k, _ in refs], ref_values=[v for _, v in refs])
    if issued is not None:
        params["issued"] = _issued_json(session, _ISSUED_TABLES[issued[0]], issued[1])
    if claim is not None:
        params.update(i_id=claim.id, i_at=claim.created_at, i_status=claim.status, i_body=claim.body)
    (stored,) = _one(session, _write_statement(issued[0] if issued else None, claim is not None), params)
    return bool(stored == 1)
