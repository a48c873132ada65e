"""Users and their bearer tokens.

A token is 256 bits from ``secrets``; only its SHA-256 is stored, so a
database read never yields a usable token, and the token is shown once.
(A fast hash is right here: the token is random, not a guessable password.)
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from rems_service.db.models import Pharmacy, Prescriber, User, UserRole
from rems_service.db.uow import UnitOfWork
from workflows.audit import OUTCOME_COMPLETED

from . import audit, events
from .actor import Actor
from .errors import Conflict, Invalid

#: Prefix that makes a leaked token recognizable to secret scanners.
TOKEN_PREFIX = "rems_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


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
    role = UserRole(role)
    problems: dict[str, list[str]] = {}
    with uow:
        session = uow.session
        if role is UserRole.PRESCRIBER:
            if prescriber_id is None:
                problems["prescriber_id"] = ["Required for the prescriber role."]
            elif session.get(Prescriber, prescriber_id) is None:
                problems["prescriber_id"] = ["No prescriber has this id."]
        elif prescriber_id is not None:
            problems["prescriber_id"] = ["Only a prescriber user is bound to a prescriber."]
        if role is UserRole.PHARMACIST:
            if pharmacy_id is None:
                problems["pharmacy_id"] = ["Required for the pharmacist role."]
            elif session.get(Pharmacy, pharmacy_id) is None:
                problems["pharmacy_id"] = ["No pharmacy has this id."]
        elif pharmacy_id is not None:
            problems["pharmacy_id"] = ["Only a pharmacist user is bound to a pharmacy."]
        if training_completed_at is not None:
            if role is not UserRole.PHARMACIST:
                problems["training_completed_at"] = ["Only pharmacists record REMS training."]
            elif training_completed_at > now:
                problems["training_completed_at"] = ["Cannot be in the future."]
        if problems:
            raise Invalid("The user cannot be created.", problems)

        token = new_token()
        user = User(
            name=name,
            role=role,
            prescriber_id=prescriber_id,
            pharmacy_id=pharmacy_id,
            training_completed_at=training_completed_at,
            token_hash=hash_token(token),
            created_at=now,
        )
        session.add(user)
        session.flush()
        subject = {"user_id": user.id, "prescriber_id": prescriber_id, "pharmacy_id": pharmacy_id}
        details = {"role": role.value, "trained": training_completed_at is not None}
        audit.append(
            session,
            actor=actor,
            action="user.created",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=subject,
            inputs={**subject, **details},
            details=details,
        )
        events.record(session, "user.created", now, {**subject, **details})
        try:
            uow.commit()
        except IntegrityError:  # pragma: no cover - a 256-bit collision
            raise Conflict("Token collision; retry.") from None
        return user, token


def authenticate(uow: UnitOfWork, token: str) -> Actor | None:
    """Return the actor holding ``token``, or None when no user has it."""
    if not token:
        return None
    with uow:
        user = uow.session.execute(
            select(User.id, User.role, User.prescriber_id, User.pharmacy_id, User.training_completed_at).where(
                User.token_hash == hash_token(token)
            )
        ).first()
        if user is None:
            return None
        return Actor(
            user_id=user.id,
            role=user.role.value,
            prescriber_id=user.prescriber_id,
            pharmacy_id=user.pharmacy_id,
            training_completed_at=user.training_completed_at,
        )
