"""In-memory fakes of the unit of work and the repository, for unit tests of the use cases.

``FakeStore`` holds the committed state: the real SQLModel row classes used
as plain objects (never a session), plus the facts the decision reads keep
in other tables (prescriber statuses, pharmacies, pharmacist training,
pregnancy tests, survey times). A ``FakeUnitOfWork`` is one transaction over
it: reads hand out private copies of the stored rows (one per row, like a
session's identity map), writes stay pending, and only ``commit()`` applies
them to the store. Leaving the ``with`` block without ``commit()`` drops
everything the unit changed: rows it added, attributes it changed on rows it
read, and its audit entries, events, decisions and idempotency writes.

``FakeRepository`` implements the repository methods that the authorization
and dispense decision use cases call (and ``find_dispense``/``lock_dispense``,
so a competitor can reverse its confirmation), with the same meaning as
``rems_service.db.repository.Repository``; the row → facts mapping is the
real one (``patient_facts``). ``add_confirmation`` enforces R-DISP-5 like the
real partial unique index: one confirmed-or-dispensed dispense per
authorization, counting committed rows and the unit's own pending ones.

Concurrency is simulated with committed transactions, never by faking an
outcome: ``FakeStore.race_on_next_confirmation(winner)`` runs ``winner`` (a
competing request committed through its own unit of work) just before the
next confirmation reaches the index, which then refuses it only if the
winner really holds the authorization.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from rems_service.db.audit_chain import PHI_KEYS
from rems_service.db.models import (
    AuditEntry,
    Authorization,
    DecisionRecord,
    Dispense,
    IdempotencyKey,
    OutboxEvent,
    Patient,
)
from rems_service.db.repository import (
    AlreadyHeld,
    AuthorizationInputs,
    ClinicalInputs,
    DecisionWrite,
    DispenseInputs,
    IdempotencyClaim,
    RecordedDecision,
    StaleClaim,
    patient_facts,
)
from workflows.actors import Actor
from workflows.audit import GENESIS_HASH, OUTCOME_COMPLETED, canonical_json, chain_hash, digest
from workflows.dispenses import DispenseStatus, PharmacistFacts, PharmacyFacts, PriorDispense
from workflows.identifiers import normalize_reference_number
from workflows.lifecycle import StateChange
from workflows.participants import PharmacyStatus, PrescriberStatus
from workflows.testing import PregnancyTest

#: Dispense statuses that hold their authorization (the real index's ``status IN ('confirmed', 'dispensed')``).
HOLDING_STATUSES = frozenset({DispenseStatus.CONFIRMED, DispenseStatus.DISPENSED})
#: Row classes the store keeps by primary key.
ROW_TYPES = (Patient, Authorization, Dispense, IdempotencyKey)


class FakeIntegrityError(Exception):
    """A unique constraint of the real schema refused a write."""


@dataclass(frozen=True)
class PharmacyRecord:
    status: PharmacyStatus
    certified_until: datetime | None


@dataclass
class Race:
    """A competing transaction committed just before a confirmation reaches the index;
    ``after`` (if given) commits once the confirmation has lost, before anything else reads."""

    winner: Callable[[], Any]
    after: Callable[[], Any] | None = None


def _plain(value: Any) -> Any:
    """The JSON form the database hands back (what the real audit entry and outbox store)."""
    return json.loads(canonical_json(value))


def _fields(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in type(row).model_fields}


def _copy(row: Any) -> Any:
    return type(row)(**_fields(row))


def _refuse_phi(where: str, value: Any) -> None:
    """R-AUD-3, as the real audit chain refuses it."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key in PHI_KEYS:
                raise ValueError(f"audit {where} may not carry {key!r} (R-AUD-3)")
            _refuse_phi(where, inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            _refuse_phi(where, inner)


@dataclass
class FakeStore:
    """The committed state of the fake database."""

    #: What ``database_now`` answers (the database server's clock, not the request's ``now``).
    clock: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    rows: dict[type, dict[uuid.UUID, Any]] = field(default_factory=lambda: {t: {} for t in ROW_TYPES})
    prescribers: dict[uuid.UUID, PrescriberStatus] = field(default_factory=dict)
    pharmacies: dict[uuid.UUID, PharmacyRecord] = field(default_factory=dict)
    #: Pharmacist user id → when REMS training was completed (None: not trained).
    pharmacist_training: dict[uuid.UUID, datetime | None] = field(default_factory=dict)
    pregnancy_tests: dict[uuid.UUID, list[PregnancyTest]] = field(default_factory=dict)
    survey_times: dict[uuid.UUID, list[datetime]] = field(default_factory=dict)
    #: CLINICAL_RULES.md: a patient's course and labs as the decision reads them (none: no course).
    clinical: dict[uuid.UUID, ClinicalInputs] = field(default_factory=dict)
    decisions: list[DecisionRecord] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    events: list[OutboxEvent] = field(default_factory=list)
    commits: int = 0
    _races: deque[Race] = field(default_factory=deque)
    _competing: bool = False
    _failures: dict[str, BaseException] = field(default_factory=dict)

    # -- seeding (committed directly, as a fixture would) --------------------------------

    def put(self, row: Any) -> Any:
        """Store ``row`` (a Patient, Authorization, Dispense or IdempotencyKey) as committed."""
        self.rows[type(row)][row.id] = row
        return row

    def add_test(self, patient_id: uuid.UUID, test: PregnancyTest) -> None:
        self.pregnancy_tests.setdefault(patient_id, []).append(test)

    def add_survey(self, patient_id: uuid.UUID, completed_at: datetime) -> None:
        self.survey_times.setdefault(patient_id, []).append(completed_at)

    # -- reading the committed state in tests --------------------------------------------

    def all(self, row_type: type) -> list[Any]:
        return list(self.rows[row_type].values())

    def get(self, row_type: type, row_id: uuid.UUID) -> Any:
        return self.rows[row_type].get(row_id)

    def idempotency_keys(self) -> list[IdempotencyKey]:
        return self.all(IdempotencyKey)

    # -- concurrency and failures ----------------------------------------------------------

    def race_on_next_confirmation(
        self, winner: Callable[[], Any], *, after: Callable[[], Any] | None = None, times: int = 1
    ) -> None:
        """The next ``times`` confirmations first let ``winner`` commit (a competing request,
        through its own unit of work), then meet the index; if the confirmation loses,
        ``after`` commits before the loser's next read (e.g. the winner reverses)."""
        for _ in range(times):
            self._races.append(Race(winner, after))

    @property
    def races_pending(self) -> int:
        return len(self._races)

    def fail_on(self, method: str, error: BaseException) -> None:
        """The next call of repository method ``method`` raises ``error`` (a lost connection, say)."""
        self._failures[method] = error

    def _take_race(self) -> Race | None:
        """The next armed race, unless a competitor is running (its own confirmation meets no race)."""
        return self._races.popleft() if self._races and not self._competing else None

    def _run_competitor(self, transaction: Callable[[], Any]) -> None:
        self._competing = True
        try:
            transaction()
        finally:
            self._competing = False

    def _take_failure(self, method: str) -> BaseException | None:
        return self._failures.pop(method, None)

    # -- invariants of the real schema ------------------------------------------------------

    def check_invariants(self) -> None:
        """What the real schema guarantees after every commit (R-DISP-5's index, unique numbers)."""
        holders: dict[uuid.UUID, int] = {}
        for row in self.all(Dispense):
            if DispenseStatus(row.status) in HOLDING_STATUSES:
                holders[row.authorization_id] = holders.get(row.authorization_id, 0) + 1
        assert all(n == 1 for n in holders.values()), f"R-DISP-5 index violated: {holders}"
        numbers = [a.number for a in self.all(Authorization)]
        assert len(numbers) == len(set(numbers)), "authorization numbers are not unique"
        seqs = [e.seq for e in self.audit]
        assert seqs == list(range(1, len(seqs) + 1)), f"audit sequence has gaps or repeats: {seqs}"


class FakeUnitOfWork:
    """One transaction over a ``FakeStore``: ``repo``, ``commit()``, and everything
    dropped on exit without ``commit()`` (an exception included)."""

    def __init__(self, store: FakeStore):
        self.store = store
        self._active = False
        self.committed = False

    def __enter__(self) -> FakeUnitOfWork:
        assert not self._active, "a unit of work is entered once at a time"
        self._active = True
        self.committed = False
        self.repo = FakeRepository(self.store, self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            self.rollback()
        self._active = False

    def commit(self) -> None:
        assert self._active, "commit outside the unit of work"
        self.repo._apply()
        self.store.commits += 1
        self.store.check_invariants()
        self.committed = True
        self.repo = FakeRepository(self.store, self)  # later work in the block starts a new transaction

    def rollback(self) -> None:
        self.repo = FakeRepository(self.store, self)


class FakeRepository:
    """The repository methods the decision use cases call, over a ``FakeStore``.

    Reads see the committed state overlaid by this unit's own pending writes.
    """

    def __init__(self, store: FakeStore, uow: FakeUnitOfWork):
        self.store = store
        self._uow = uow
        #: Rows read in this unit: (type, id) → (the private copy handed out, its fields when read).
        self._seen: dict[tuple[type, uuid.UUID], tuple[Any, dict[str, Any]]] = {}
        #: Rows inserted in this unit, by (type, id).
        self._new: dict[tuple[type, uuid.UUID], Any] = {}
        self._deleted: set[tuple[type, uuid.UUID]] = set()
        self._audit: list[AuditEntry] = []
        self._events: list[OutboxEvent] = []
        self._decisions: list[DecisionRecord] = []

    # -- the unit's view ---------------------------------------------------------------------

    def _check(self, method: str) -> None:
        assert self._uow._active and self._uow.repo is self, "repository used outside its unit of work"
        error = self.store._take_failure(method)
        if error is not None:
            raise error

    def _row(self, row_type: type, row_id: uuid.UUID | None) -> Any:
        """The unit's copy of a row (read once, then the same object), or None."""
        if row_id is None:
            return None
        key = (row_type, row_id)
        if key in self._deleted:
            return None
        if key in self._new:
            return self._new[key]
        if key not in self._seen:
            stored = self.store.rows[row_type].get(row_id)
            if stored is None:
                return None
            copy = _copy(stored)
            self._seen[key] = (copy, _fields(stored))
        return self._seen[key][0]

    def _rows(self, row_type: type, **where: Any) -> Iterator[Any]:
        """Every row of ``row_type`` visible to this unit whose attributes equal ``where``."""
        ids = set(self.store.rows[row_type]) | {rid for (t, rid) in self._new if t is row_type}
        for row_id in ids:
            row = self._row(row_type, row_id)
            if row is not None and all(getattr(row, k) == v for k, v in where.items()):
                yield row

    def _holding(self, authorization_id: uuid.UUID, status: DispenseStatus) -> list[Dispense]:
        return [d for d in self._rows(Dispense, authorization_id=authorization_id) if d.status == status]

    # -- decision reads ------------------------------------------------------------------------

    def authorization_inputs(
        self, patient_id: uuid.UUID, prescriber_id: uuid.UUID | None
    ) -> AuthorizationInputs | None:
        self._check("authorization_inputs")
        patient = self._row(Patient, patient_id)
        if patient is None:
            return None
        surveys = self.store.survey_times.get(patient.id, [])
        return AuthorizationInputs(
            patient=patient,
            prescriber_status=self.store.prescribers.get(prescriber_id) or PrescriberStatus.DECERTIFIED
            if prescriber_id
            else PrescriberStatus.DECERTIFIED,
            facts=patient_facts(patient, self.store.pregnancy_tests.get(patient.id, [])),
            last_survey_at=max(surveys) if surveys else None,
            clinical=self.store.clinical.get(patient.id),
        )

    def dispense_inputs(
        self, number: str, rems_patient_id: str, pharmacy_id: uuid.UUID | None, user_id: uuid.UUID | None
    ) -> DispenseInputs:
        self._check("dispense_inputs")
        number = normalize_reference_number(number)
        auth = next(self._rows(Authorization, number=number), None)
        patient = self._row(Patient, auth.patient_id) if auth is not None else None
        holding = self.holding_dispense(auth.id) if auth is not None else None
        pharmacy = self.store.pharmacies.get(pharmacy_id) if pharmacy_id else None
        matches = auth is not None and patient is not None and auth.rems_patient_id == rems_patient_id
        return DispenseInputs(
            authorization=auth,
            holding=holding,
            pharmacy=PharmacyFacts(
                pharmacy_id=str(pharmacy_id),
                status=pharmacy.status if pharmacy else PharmacyStatus.DECERTIFIED,
                certified_until=pharmacy.certified_until if pharmacy else None,
            ),
            pharmacist=PharmacistFacts(
                user_id=str(user_id),
                training_completed_at=self.store.pharmacist_training.get(user_id) if user_id else None,
            ),
            patient=patient if matches else None,
            facts=patient_facts(patient, self.store.pregnancy_tests.get(patient.id, []))
            if matches and patient
            else None,
            prior=self._prior_dispense(patient.id) if matches and patient else None,
            clinical=self.store.clinical.get(patient.id) if matches and patient else None,
        )

    def _prior_dispense(self, patient_id: uuid.UUID) -> PriorDispense | None:
        done = [d for d in self._rows(Dispense, patient_id=patient_id) if d.status == DispenseStatus.DISPENSED]
        if not done:
            return None
        last = max(done, key=lambda d: d.dispensed_at)
        return PriorDispense(last.dispensed_at, last.days_supply)

    def holding_dispense(self, authorization_id: uuid.UUID, lock: bool = False) -> Dispense | None:
        """The authorization's dispense in stored status ``confirmed``, if any."""
        self._check("holding_dispense")
        found = self._holding(authorization_id, DispenseStatus.CONFIRMED)
        return found[0] if found else None

    def find_dispense(self, number: str) -> Dispense | None:
        """(For a competitor that reverses its confirmation through ``dispenses.reverse``.)"""
        self._check("find_dispense")
        return next(self._rows(Dispense, confirmation_number=normalize_reference_number(number)), None)

    def lock_dispense(self, found: Dispense) -> tuple[Patient, Authorization, Dispense]:
        """Patient, authorization and dispense of ``found`` (this fake runs one unit at a time:
        nothing else can change them while the unit holds them)."""
        self._check("lock_dispense")
        patient = self._row(Patient, found.patient_id)
        auth = self._row(Authorization, found.authorization_id)
        row = self._row(Dispense, found.id)
        assert patient is not None and auth is not None and row is not None
        return patient, auth, row

    def authorization_number_taken(self, number: str) -> bool:
        self._check("authorization_number_taken")
        return next(self._rows(Authorization, number=number), None) is not None

    # -- writes ----------------------------------------------------------------------------------

    def add(self, row: Any) -> None:
        """Insert ``row``, or keep the changes made to a row this unit read."""
        self._check("add")
        key = (type(row), row.id)
        if key in self._seen:
            assert self._seen[key][0] is row, "a second object for a row this unit already holds"
            return
        if key in self._new:
            return
        stored = self.store.rows[type(row)].get(row.id)
        if stored is not None:  # another object for a stored row: its changes are kept like a read row's
            self._seen[key] = (row, _fields(stored))
            return
        if isinstance(row, Authorization) and self.authorization_number_taken(row.number):
            raise FakeIntegrityError(f"authorization number {row.number} is taken")
        self._new[key] = row

    def add_confirmation(self, row: Dispense) -> None:
        """Insert a dispense confirmation; ``AlreadyHeld`` if R-DISP-5's index refuses it."""
        self._check("add_confirmation")
        race = self.store._take_race()
        if race is not None:
            self.store._run_competitor(race.winner)
        holders = [d for d in self._current_dispenses(row.authorization_id) if d.id != row.id]
        if DispenseStatus(row.status) in HOLDING_STATUSES and holders:
            if race is not None and race.after is not None:
                self.store._run_competitor(race.after)
            raise AlreadyHeld()
        self._new[(Dispense, row.id)] = row

    def _current_dispenses(self, authorization_id: uuid.UUID) -> list[Dispense]:
        """The authorization's holding dispenses as the index sees them now: the latest
        committed rows (a competitor's included) with this unit's own changes on top."""
        found = []
        for stored in self.store.all(Dispense):
            status = stored.status
            seen = self._seen.get((Dispense, stored.id))
            if seen is not None and seen[0].status != seen[1]["status"]:
                status = seen[0].status
            if stored.authorization_id == authorization_id and DispenseStatus(status) in HOLDING_STATUSES:
                found.append(stored)
        found += [
            d
            for (t, _), d in self._new.items()
            if t is Dispense and d.authorization_id == authorization_id and DispenseStatus(d.status) in HOLDING_STATUSES
        ]
        return found

    def _append_audit(
        self,
        *,
        actor: Actor,
        action: str,
        outcome: str,
        effective_at: datetime,
        subject: Mapping[str, Any],
        reasons: list[dict[str, Any]] | None = None,
        program_version: str | None = None,
        inputs: Any = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        plain_subject, plain_details = _plain(dict(subject)), _plain(dict(details or {}))
        _refuse_phi("subject", plain_subject)
        _refuse_phi("details", plain_details)
        previous = self._audit[-1] if self._audit else (self.store.audit[-1] if self.store.audit else None)
        entry = AuditEntry(
            seq=previous.seq + 1 if previous else 1,
            recorded_at=self.store.clock,
            effective_at=effective_at,
            actor_user_id=actor.user_id,
            actor_role=actor.role,
            action=action,
            outcome=outcome,
            reasons=_plain(list(reasons or [])),
            program_version=program_version,
            subject=plain_subject,
            prescriber_id=uuid.UUID(plain_subject["prescriber_id"]) if plain_subject.get("prescriber_id") else None,
            pharmacy_id=uuid.UUID(plain_subject["pharmacy_id"]) if plain_subject.get("pharmacy_id") else None,
            rems_patient_id=plain_subject.get("rems_patient_id"),
            inputs_digest=digest(inputs if inputs is not None else {}),
            details=plain_details,
            prev_hash=previous.hash if previous else GENESIS_HASH,
            hash="",
        )
        entry.hash = chain_hash(entry.prev_hash, {k: v for k, v in _fields(entry).items() if k != "hash"})
        self._audit.append(entry)
        return entry

    def _record_event(self, event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> None:
        self._events.append(
            OutboxEvent(
                type=event_type, occurred_at=occurred_at, created_at=self.store.clock, payload=_plain(dict(data))
            )
        )

    def record_change(
        self,
        actor: Actor,
        row: Any,
        change: StateChange,
        subject: Mapping[str, Any],
        program_version: str | None = None,
    ) -> None:
        """Store ``change`` on ``row`` with its audit entry and outbox event (as the real one)."""
        self._check("record_change")
        row.status = type(row.status)(change.to_state)
        row.status_changed_at = change.at
        row.status_reason = change.details.get("reason")
        self.add(row)
        details = {"from_state": change.from_state, "to_state": change.to_state, **change.details}
        self._append_audit(
            actor=actor,
            action=change.event,
            outcome=OUTCOME_COMPLETED,
            effective_at=change.at,
            subject=subject,
            program_version=program_version,
            inputs={"subject": dict(subject), "trigger": change.trigger, "from_state": change.from_state},
            details=details,
        )
        self._record_event(change.event, change.at, {**subject, **details, "actor": actor.as_audit()})

    def record_decision(
        self,
        write: DecisionWrite,
        event: str,
        *,
        confirmed: Authorization | None = None,
        issued: Authorization | Dispense | None = None,
    ) -> RecordedDecision:
        """The decision row with its snapshot, its audit entry (digesting the snapshot) and
        its outbox event, with the authorization it changed and the row it issued, as the
        real one stores them."""
        self._check("record_decision")
        if confirmed is not None:
            self.add(confirmed)
        entry = self._append_audit(**write.audit_entry())
        recorded = write.recorded(entry.seq, entry.recorded_at)
        self._decisions.append(DecisionRecord(**recorded.row_values))
        self._record_event(event, write.now, write.event_data())
        if isinstance(issued, Dispense):
            self.add_confirmation(issued)
        elif issued is not None:
            self.add(issued)
        return recorded

    # -- idempotency keys ------------------------------------------------------------------------

    def database_now(self) -> datetime:
        self._check("database_now")
        return self.store.clock

    def claim_idempotency_key(
        self, scope: str, endpoint: str, key: str, request_digest: str
    ) -> IdempotencyClaim | IdempotencyKey:
        """Insert a claim for ``key``; if one exists already, return the existing row instead."""
        self._check("claim_idempotency_key")
        existing = next(self._rows(IdempotencyKey, scope=scope, endpoint=endpoint, key=key), None)
        if existing is not None:
            return existing
        row = IdempotencyKey(
            scope=scope, endpoint=endpoint, key=key, request_digest=request_digest, created_at=self.store.clock
        )
        self._new[(IdempotencyKey, row.id)] = row
        return IdempotencyClaim(row.id, row.created_at)

    def _claim_row(self, claim_id: uuid.UUID, created_at: datetime) -> IdempotencyKey | None:
        """The unfinished claim row still held at ``created_at`` (compare-and-set), else None."""
        row = self._row(IdempotencyKey, claim_id)
        if row is None or row.created_at != created_at or row.response_body is not None:
            return None
        return row

    def take_over_claim(self, existing: IdempotencyKey, now: datetime) -> IdempotencyClaim | None:
        self._check("take_over_claim")
        row = self._claim_row(existing.id, existing.created_at)
        if row is None:
            return None
        row.created_at = now
        return IdempotencyClaim(existing.id, now)

    def complete_idempotency_claim(self, claim: IdempotencyClaim, status: int, body: str) -> None:
        self._check("complete_idempotency_claim")
        row = self._claim_row(claim.id, claim.created_at)
        if row is None:
            raise StaleClaim()
        row.response_status, row.response_body, row.completed_at = status, body, self.store.clock

    def release_idempotency_claim(self, claim: IdempotencyClaim) -> None:
        self._check("release_idempotency_claim")
        row = self._row(IdempotencyKey, claim.id)
        if row is not None and row.response_body is None:
            self._new.pop((IdempotencyKey, claim.id), None)
            self._deleted.add((IdempotencyKey, claim.id))

    # -- commit ----------------------------------------------------------------------------------

    def _apply(self) -> None:
        """Apply this unit's writes to the store (``FakeUnitOfWork.commit``)."""
        last = self.store.audit[-1].seq if self.store.audit else 0
        if self._audit and self._audit[0].seq != last + 1:
            raise RuntimeError("the audit chain moved under this unit of work (the real chain head is locked)")
        for (row_type, row_id), (copy, read) in self._seen.items():
            stored = self.store.rows[row_type].get(row_id)
            if stored is None or (row_type, row_id) in self._deleted:
                continue
            for name, value in _fields(copy).items():
                if value != read[name]:
                    setattr(stored, name, value)
        for (row_type, row_id), row in self._new.items():
            self.store.rows[row_type][row_id] = _copy(row)
        for row_type, row_id in self._deleted:
            self.store.rows[row_type].pop(row_id, None)
        self.store.audit += self._audit
        self.store.events += self._events
        self.store.decisions += self._decisions
