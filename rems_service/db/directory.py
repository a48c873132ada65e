"""Program staff's reads of the participants: prescribers, pharmacies and users listed
with a search, and a participant's history in the audit log (UI.md, Program staff).

Reads only; every change goes through the use cases. Lists are keyset pages by
(sort key, id), so rows added between two pages are neither skipped nor repeated.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, true
from sqlmodel import Session, col, select

from .models import AuditEntry, Pharmacy, Prescriber, User

#: At most this many words of a search.
MAX_TERMS = 5


def _matching(columns: Sequence[Any], terms: Sequence[str]) -> Any:
    """Every term in one of ``columns``, in any case (LIKE wildcards in a term are literal)."""
    if not terms:
        return true()
    return and_(*(or_(*(c.icontains(term, autoescape=True) for c in columns)) for term in terms))


def _after(first: Any, second: Any, after: tuple[Any, Any] | None) -> Any:
    if after is None:
        return true()
    a, b = after
    return or_(first > a, and_(first == a, second > b))


class Directory:
    """Lists of participants and users on one session."""

    def __init__(self, session: Session):
        self.session = session

    def prescribers(
        self, terms: Sequence[str], status: str | None, after: tuple[str, uuid.UUID] | None, limit: int
    ) -> Sequence[Prescriber]:
        """Prescribers whose NPI, names or email hold every term, by last name then id."""
        query = select(Prescriber).where(
            _matching(
                [col(Prescriber.npi), col(Prescriber.first_name), col(Prescriber.last_name), col(Prescriber.email)],
                terms,
            ),
            _after(col(Prescriber.last_name), col(Prescriber.id), after),
        )
        if status:
            query = query.where(col(Prescriber.status) == status)
        return self.session.exec(query.order_by(col(Prescriber.last_name), col(Prescriber.id)).limit(limit)).all()

    def pharmacies(
        self, terms: Sequence[str], status: str | None, after: tuple[str, uuid.UUID] | None, limit: int
    ) -> Sequence[Pharmacy]:
        """Pharmacies whose NCPDP ID, name or representative hold every term, by name then id.
        ``status`` is the stored status (a lapsed certification shows as expired in the view)."""
        query = select(Pharmacy).where(
            _matching(
                [
                    col(Pharmacy.ncpdp_id),
                    col(Pharmacy.name),
                    col(Pharmacy.representative_name),
                    col(Pharmacy.representative_email),
                ],
                terms,
            ),
            _after(col(Pharmacy.name), col(Pharmacy.id), after),
        )
        if status:
            query = query.where(col(Pharmacy.status) == status)
        return self.session.exec(query.order_by(col(Pharmacy.name), col(Pharmacy.id)).limit(limit)).all()

    def users(
        self, terms: Sequence[str], role: str | None, after: tuple[str, uuid.UUID] | None, limit: int
    ) -> Sequence[User]:
        """Users whose name or email hold every term, by name then id."""
        query = select(User).where(
            _matching([col(User.name), col(User.email)], terms),
            _after(col(User.name), col(User.id), after),
        )
        if role:
            query = query.where(col(User.role) == role)
        return self.session.exec(query.order_by(col(User.name), col(User.id)).limit(limit)).all()

    def all_prescribers(self) -> Sequence[Prescriber]:
        """Every prescriber by last name (the auditor's filter choices)."""
        return self.session.exec(select(Prescriber).order_by(col(Prescriber.last_name), col(Prescriber.id))).all()

    def all_pharmacies(self) -> Sequence[Pharmacy]:
        """Every pharmacy by name (the auditor's filter choices)."""
        return self.session.exec(select(Pharmacy).order_by(col(Pharmacy.name), col(Pharmacy.id))).all()

    def history(self, kind: str, participant_id: uuid.UUID, limit: int) -> Sequence[AuditEntry]:
        """The audit entries of a participant's own life cycle (``prescriber.*`` or
        ``pharmacy.*`` actions about it), newest first."""
        column = col(AuditEntry.prescriber_id) if kind == "prescriber" else col(AuditEntry.pharmacy_id)
        query = (
            select(AuditEntry)
            .where(column == participant_id, col(AuditEntry.action).startswith(f"{kind}.", autoescape=True))
            .order_by(col(AuditEntry.seq).desc())
            .limit(limit)
        )
        return self.session.exec(query).all()
