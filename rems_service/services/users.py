"""Users and their bearer tokens.

A token is 256 bits from ``secrets``; only its SHA-256 is stored, so a
database read never yields a usable token, and the token is shown once.
(A fast hash is right here: the token is random, not a guessable password.)

People who use the portal also have an email and a password (UI.md,
"Sign-in"). The password is kept only as an Argon2id hash (argon2-cffi: slow,
salted, its parameters inside the hash); the email is stored trimmed and
lower-cased, so it is unique case-insensitively.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rems_service.db.models import Pharmacy, Prescriber, User
from rems_service.db.repository import DISABLED_TOKEN_MARK, Duplicate
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.audit import OUTCOME_COMPLETED

from .errors import Conflict, Forbidden, Invalid, NotFound

#: Prefix that makes a leaked token recognizable to secret scanners.
TOKEN_PREFIX = "rems_"
#: The shortest password a person may choose (UI.md).
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
#: Argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile).
_hasher = PasswordHasher()
#: Verified against when the email is unknown, so a wrong email costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone's")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _credential_problems(uow: UnitOfWork, email: str | None, password: str | None) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if email is not None:
        normalized = normalize_email(email)
        local, at, domain = normalized.rpartition("@")
        if not at or not local or "." not in domain or " " in normalized or len(normalized) > 254:
            problems["email"] = ["Not an email address."]
        elif uow.repo.user_by_email(normalized) is not None:
            problems["email"] = ["Another user has this email."]
    if password is not None:
        if len(password) < MIN_PASSWORD_LENGTH:
            problems["password"] = [f"At least {MIN_PASSWORD_LENGTH} characters."]
        elif len(password) > MAX_PASSWORD_LENGTH:
            problems["password"] = [f"At most {MAX_PASSWORD_LENGTH} characters."]
        if email is None:
            problems.setdefault("email", []).append("Required with a password: people sign in with both.")
    return problems


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
    email: str | None = None,
    password: str | None = None,
) -> tuple[User, str]:
    """Create a user and return it with its token (the only time the token exists).

    ``email`` and ``password`` let a person sign in to the portal. Raises
    ``Invalid`` when the role's binding is missing, unknown or inapplicable,
    the training date is in the future, the email is malformed or taken, or
    the password is shorter than ``MIN_PASSWORD_LENGTH``.
    """
    user_role = UserRole(role)
    with uow:
        problems = _binding_problems(uow, user_role, prescriber_id, pharmacy_id, training_completed_at, now)
        problems.update(_credential_problems(uow, email, password))
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
            email=normalize_email(email) if email is not None else None,
            password_hash=_hasher.hash(password) if password is not None else None,
        )
        try:
            uow.repo.add(user)
        except Duplicate:  # a concurrent request took the email between the check and the insert
            raise Invalid("The user cannot be created.", {"email": ["Another user has this email."]}) from None
        subject = {"user_id": user.id, "prescriber_id": prescriber_id, "pharmacy_id": pharmacy_id}
        # Whether the user may sign in, never the email or the password (no PHI or secrets in the log).
        details = {
            "role": user_role.value,
            "trained": training_completed_at is not None,
            "sign_in": password is not None,
        }
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
        except Duplicate:  # a concurrent user took the email (or, never in practice, the token)
            raise Conflict("Another user has this email (or the token collided); retry.") from None
        return user, token


@dataclass(frozen=True)
class ActiveUser:
    """A user who may act now: the actor of its requests and the name the portal shows."""

    actor: Actor
    name: str


def sign_in(uow: UnitOfWork, email: str, password: str) -> ActiveUser | None:
    """The user whose email and password these are, if it may act; None otherwise (which of
    the two was wrong is never said). An unknown email costs the same hash verification
    as a wrong password."""
    with uow:
        user = uow.repo.user_by_email(normalize_email(email))
        stored = user.password_hash if user is not None else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or stored is None:
        return None
    return load_active(uow, user.id)


def load_active(uow: UnitOfWork, user_id: uuid.UUID) -> ActiveUser | None:
    """The user ``user_id`` if it may act now, else None: every portal request loads its
    session's user through here (Flask-Login's ``user_loader``), so a user who may no
    longer act is signed out at its next request."""
    with uow:
        found = uow.repo.actor_by_user_id(user_id)
    return None if found is None else ActiveUser(actor=found[0], name=found[1])


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


# -- disabling a user (UI.md, Program staff: "Disable user") -----------------------------------
# INTERIM, for the integrator to reconcile: another branch adds user disable/enable to the API
# and services with a column of its own. Until then a disabled user is marked in ``token_hash``
# itself: ``DISABLED_TOKEN_MARK`` and random hex, which no SHA-256 hex digest equals, so the
# user's bearer token stops matching at once, and the repository's ``actor_by_user_id`` (behind
# ``load_active``, every portal request) finds no such user, so its sessions end at their next
# request.


def is_disabled(user: User) -> bool:
    return user.token_hash.startswith(DISABLED_TOKEN_MARK)


def disable(uow: UnitOfWork, actor: Actor, now: datetime, user_id: uuid.UUID) -> User:
    """Disable ``user_id``: its token and sessions stop working at once. Admins only;
    ``NotFound`` for an unknown user, ``Conflict`` for one already disabled or for oneself."""
    if not actor.is_admin:
        raise Forbidden(f"The {actor.role} role may not disable users.")
    if actor.user_id == user_id:
        raise Conflict("You cannot disable yourself: ask another administrator.")
    with uow:
        user = uow.repo.get(User, user_id, lock=True)
        if user is None:
            raise NotFound("User not found.")
        if is_disabled(user):
            raise Conflict("This user is already disabled.")
        user.token_hash = DISABLED_TOKEN_MARK + secrets.token_hex(27)
        subject = {"user_id": user.id, "prescriber_id": user.prescriber_id, "pharmacy_id": user.pharmacy_id}
        details = {"role": user.role.value}
        uow.repo.append_audit(
            actor=actor,
            action="user.disabled",
            outcome=OUTCOME_COMPLETED,
            effective_at=now,
            subject=subject,
            inputs={**subject, **details},
            details=details,
        )
        uow.repo.record_event("user.disabled", now, {**subject, **details})
        uow.commit()
        return user
