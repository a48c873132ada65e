"""Users and their bearer tokens.

A token is 256 bits from ``secrets``; only its SHA-256 is stored, so a
database read never yields a usable token, and the token is shown once.
(A fast hash is right here: the token is random, not a guessable password.)
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from rems_service.db.models import Pharmacy, Prescriber, User
from rems_service.db.repository import Duplicate
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.audit import OUTCOME_COMPLETED

from .errors import Conflict, Invalid, NotFound

#: Prefix that makes a leaked token recognizable to secret scanners.
TOKEN_PREFIX = "rems_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _binding_problems(
    uow: UnitOfWork,
    role: UserRole,
    prescriber_id: uuid.UUID | None,
    pharmacy_id: uuid.UUID | None,
    training_completed_at: datetime | None,
    now: datetime,
) -> dict[str, list[str]]:
    """What is wrong with the role's binding to a prescriber or pharmacy, and with its training date."""
    problems: dict[str, list[str]] = {}
    if role is UserRole.PRESCRIBER:
        if prescriber_id is None:
            problems["prescriber_id"] = ["Required for the prescriber role."]
        elif uow.repo.get(Prescriber, prescriber_id) is None:
            problems["prescriber_id"] = ["No prescriber has this id."]
    elif prescriber_id is not None:
        problems["prescriber_id"] = ["Only a prescriber user is bound to a prescriber."]
    if role is UserRole.PHARMACIST:
        if pharmacy_id is None:
            problems["pharmacy_id"] = ["Required for the pharmacist role."]
        elif uow.repo.get(Pharmacy, pharmacy_id) is None:
            problems["pharmacy_id"] = ["No pharmacy has this id."]
    elif pharmacy_id is not None:
        problems["pharmacy_id"] = ["Only a pharmacist user is bound to a pharmacy."]
    if training_completed_at is not None:
        if role is not UserRole.PHARMACIST:
            problems["training_completed_at"] = ["Only pharmacists record REMS training."]
        elif training_completed_at > now:
            problems["training_completed_at"] = ["Cannot be in the future."]
    return problems


def create_user(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    *,
    name: str,
    role: str,
    prescriber_id: uuid.UUID | None = None,
    pharmacy_id: uuid.UUID | None = None,
    training_completed_at: datetime | None = None,
) -> tuple[User, str]:
    """Create a user and return it with its token (the only time the token exists).

    Raises ``Invalid`` when the role's binding is missing, unknown or
    inapplicable, or the training date is in the future.
    """
    user_role = UserRole(role)
    with uow:
        problems = _binding_problems(uow, user_role, prescriber_id, pharmacy_id, training_completed_at, now)
        if problems:
            raise Invalid("The user cannot be created.", problems)
        token = new_token()
        user = User(
            name=name,
            role=user_role,
            prescriber_id=prescriber_id,
            pharmacy_id=pharmacy_id,
            training_completed_at=training_completed_at,
            token_hash=hash_token(token),
            created_at=now,
        )
        uow.repo.add(user)
        subject = {"user_id": user.id, "prescriber_id": prescriber_id, "pharmacy_id": pharmacy_id}
        details = {"role": user_role.value, "trained": training_completed_at is not None}
        uow.repo.append_audit(
            actor=actor,
            action="user.created",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=subject,
            inputs={**subject, **details},
            details=details,
        )
        uow.repo.record_event("user.created", now, {**subject, **details})
        try:
            uow.commit()
        except Duplicate:  # pragma: no cover - a 256-bit collision
            raise Conflict("Token collision; retry.") from None
        return user, token


def authenticate(uow: UnitOfWork, token: str) -> Actor | None:
    """Return the actor holding ``token``, or None when no user has it."""
    if not token:
        return None
    with uow:
        return uow.repo.actor_by_token_hash(hash_token(token))


def any_exist(uow: UnitOfWork) -> bool:
    """Whether any user exists (the demo seed runs only on an empty database)."""
    with uow:
        return uow.repo.exists(User)


@dataclass(frozen=True)
class Me:
    """The caller as stored now. ``trained`` says whether a pharmacist has completed
    REMS training by ``now`` (R-PHA-3); None for roles that need none."""

    user: User
    trained: bool | None


def me(uow: UnitOfWork, actor: Actor, now: datetime) -> Me:
    """The calling user (``GET /me``), read fresh: its role, binding and training."""
    with uow:
        user = uow.repo.get(User, actor.user_id) if actor.user_id else None
        if user is None:
            raise NotFound("User not found.")
    trained = None
    if user.role is UserRole.PHARMACIST:
        trained = user.training_completed_at is not None and user.training_completed_at <= now
    return Me(user, trained)
