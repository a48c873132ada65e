"""``Idempotency-Key`` for the decision endpoints (API.md, Conventions).

A key is *claimed* in a short transaction of its own before the request is
decided, and *completed* with the exact response body inside the decision's
transaction, so the stored response exists if and only if the decision does.

- Same key, same body, completed: the stored response, nothing else done.
- Same key, other body: 422.
- Same key while the first request is still running: 409.
- A claim whose request failed is released, so the client may retry; one
  left behind by a crashed process is taken over after ``STALE_AFTER``.

Keys are scoped to the caller's prescriber or pharmacy and to the endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from rems_service.db.engine import database_now
from rems_service.db.models import IdempotencyKey
from rems_service.db.uow import UnitOfWork
from workflows.audit import digest

from .actor import Actor
from .errors import Conflict, Invalid

HEADER = "Idempotency-Key"
#: An unfinished claim older than this belongs to a request that died with its process.
STALE_AFTER = timedelta(minutes=2)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Claim:
    id: Any
    created_at: Any


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str


def scope_of(actor: Actor) -> str:
    """Keys belong to the caller's prescriber or pharmacy (any of its users), else to the user."""
    if actor.prescriber_id:
        return f"prescriber:{actor.prescriber_id}"
    if actor.pharmacy_id:
        return f"pharmacy:{actor.pharmacy_id}"
    return f"user:{actor.user_id}"


def validate_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Invalid(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            {HEADER: [f"1 to {MAX_KEY_LENGTH} printable ASCII characters."]},
        )
    return key


def claim(uow: UnitOfWork, scope: str, endpoint: str, key: str, body: Any) -> Claim | StoredResponse:
    """Claim ``key`` for this request, or return the response already stored for it.

    Raises ``Invalid`` (422) when the key was used with another body and
    ``Conflict`` (409) while the first request is still running.
    """
    request_digest = digest({"endpoint": endpoint, "body": body})
    with uow:
        session = uow.session
        now = database_now(session)
        row = IdempotencyKey(scope=scope, endpoint=endpoint, key=key, request_digest=request_digest, created_at=now)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
        else:
            uow.commit()
            return Claim(row.id, row.created_at)
        existing = session.exec(
            select(IdempotencyKey).where(
                IdempotencyKey.scope == scope, IdempotencyKey.endpoint == endpoint, IdempotencyKey.key == key
            )
        ).one()
        if existing.request_digest != request_digest:
            raise Invalid(
                f"This {HEADER} was used with a different request body.",
                {HEADER: ["Already used with a different request body."]},
            )
        if existing.response_body is not None:
            return StoredResponse(existing.response_status or 201, existing.response_body)
        now = database_now(session)
        if now - existing.created_at < STALE_AFTER:
            raise Conflict(
                f"A request with this {HEADER} is still being processed; retry shortly.",
                {HEADER: ["In flight."]},
            )
        # Take over an abandoned claim; the compare-and-set keeps two takers apart.
        taken = session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == existing.id,
                IdempotencyKey.created_at == existing.created_at,
                IdempotencyKey.response_body.is_(None),
            )
            .values(created_at=now)
        )
        if taken.rowcount != 1:
            raise Conflict(
                f"A request with this {HEADER} is still being processed; retry shortly.", {HEADER: ["In flight."]}
            )
        uow.commit()
        return Claim(existing.id, now)


def complete(session: Session, claimed: Claim, status: int, body: str) -> None:
    """Store the response in the caller's (the decision's) transaction."""
    done = session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == claimed.id,
            IdempotencyKey.created_at == claimed.created_at,
            IdempotencyKey.response_body.is_(None),
        )
        .values(response_status=status, response_body=body, completed_at=database_now(session))
    )
    if done.rowcount != 1:
        # Another process took the claim over: do not decide twice.
        raise Conflict(f"A request with this {HEADER} is being processed elsewhere.", {HEADER: ["In flight."]})


def release(uow: UnitOfWork, claimed: Claim) -> None:
    """Forget an unfinished claim after its request failed, so the client can retry."""
    with uow:
        uow.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.id == claimed.id, IdempotencyKey.response_body.is_(None))
        )
        uow.commit()


def run(
    uow_factory: Callable[[], UnitOfWork],
    actor: Actor,
    endpoint: str,
    key: str | None,
    body: Any,
    execute: Callable[[Claim | None], str],
) -> tuple[StoredResponse, bool]:
    """Run ``execute`` at most once per key; return (response, replayed).

    ``execute(claim)`` decides, calls ``complete`` inside its own transaction
    and returns the response body.
    """
    if key is None:
        return StoredResponse(201, execute(None)), False
    outcome = claim(uow_factory(), scope_of(actor), endpoint, validate_key(key), body)
    if isinstance(outcome, StoredResponse):
        return outcome, True
    try:
        return StoredResponse(201, execute(outcome)), False
    except BaseException:
        release(uow_factory(), outcome)
        raise
