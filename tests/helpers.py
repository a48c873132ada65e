"""Test helpers: an API client that speaks bearer tokens, and ready-made participants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rems_service.services import pharmacies, prescribers, users
from rems_service.services.actor import SYSTEM
from workflows.participants import PHARMACY_ATTESTATIONS, PRESCRIBER_ATTESTATIONS

#: Valid NPIs (check digit per the CMS algorithm).
VALID_NPIS = ("1234567893", "1245319599", "1679576722", "1003000126", "1497758544")
PRESCRIBER_ATTESTED = dict.fromkeys(PRESCRIBER_ATTESTATIONS, True)
PHARMACY_ATTESTED = dict.fromkeys(PHARMACY_ATTESTATIONS, True)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


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
    return users.create_user(
        runtime.uow(), SYSTEM, datetime.now(UTC), name=f"test {role}", role=role, **kwargs
    )


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
