"""Program staff's lists of prescribers, pharmacies and users, with a search (UI.md,
Program staff), and the participants an auditor can filter the log by.

Admins only, except ``filter_choices`` (auditors and admins). Pages are keyset
pages with opaque cursors (``paging``); a search is up to ``MAX_TERMS`` words,
each of which must occur (any case) in one of the searched columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from rems_service.db.directory import MAX_TERMS
from rems_service.db.models import Pharmacy, Prescriber, User
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.participants import PharmacyStatus, PrescriberStatus

from .errors import Forbidden, Invalid
from .paging import DEFAULT_LIMIT, Page, PageRequest, page_of

KEY = (str, uuid.UUID)


def _admin(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        raise Forbidden(f"The {actor.role} role may not list {what}.")


def _terms(q: str | None) -> tuple[str, ...]:
    terms = tuple(dict.fromkeys((q or "").split()))
    if len(terms) > MAX_TERMS:
        raise Invalid("The search has too many words.", {"q": [f"At most {MAX_TERMS} words."]})
    return terms


def _choice(value: str | None, allowed: Sequence[str], field: str) -> str | None:
    if value and value not in allowed:
        raise Invalid(f"Unknown {field}.", {field: [f"One of: {', '.join(allowed)}."]})
    return value or None


def prescribers(
    uow: UnitOfWork,
    actor: Actor,
    *,
    q: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[Prescriber]:
    """Prescribers by last name; ``q`` searches the NPI, names and email."""
    _admin(actor, "prescribers")
    request = PageRequest.of(cursor, limit, "directory-prescribers", KEY)
    wanted = _choice(status, [s.value for s in PrescriberStatus], "status")
    with uow:
        rows = uow.directory.prescribers(_terms(q), wanted, request.after, request.fetch)
    return page_of(rows, request.limit, "directory-prescribers", lambda r: (r.last_name, r.id))


def pharmacies(
    uow: UnitOfWork,
    actor: Actor,
    *,
    q: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[Pharmacy]:
    """Pharmacies by name; ``q`` searches the NCPDP ID, name and authorized representative."""
    _admin(actor, "pharmacies")
    request = PageRequest.of(cursor, limit, "directory-pharmacies", KEY)
    wanted = _choice(status, [s.value for s in PharmacyStatus], "status")
    with uow:
        rows = uow.directory.pharmacies(_terms(q), wanted, request.after, request.fetch)
    return page_of(rows, request.limit, "directory-pharmacies", lambda r: (r.name, r.id))


def users(
    uow: UnitOfWork,
    actor: Actor,
    *,
    q: str | None = None,
    role: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[User]:
    """Users by name; ``q`` searches the name and email."""
    _admin(actor, "users")
    request = PageRequest.of(cursor, limit, "directory-users", KEY)
    wanted = _choice(role, [r.value for r in UserRole], "role")
    with uow:
        rows = uow.directory.users(_terms(q), wanted, request.after, request.fetch)
    return page_of(rows, request.limit, "directory-users", lambda r: (r.name, r.id))


@dataclass(frozen=True)
class FilterChoices:
    """The participants the audit log can be filtered by."""

    prescribers: list[Prescriber]
    pharmacies: list[Pharmacy]


def filter_choices(uow: UnitOfWork, actor: Actor) -> FilterChoices:
    """Every prescriber and pharmacy (auditors and admins), for the audit log's filters."""
    if not (actor.is_admin or actor.role == UserRole.AUDITOR.value):
        raise Forbidden(f"The {actor.role} role may not list participants.")
    with uow:
        return FilterChoices(list(uow.directory.all_prescribers()), list(uow.directory.all_pharmacies()))
