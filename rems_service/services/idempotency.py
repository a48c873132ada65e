"""``Idempotency-Key`` for the decision endpoints (API.md, Conventions).

A key is *claimed* in a short transaction of its own before the request is
decided, and *completed* with the exact response body inside the decision's
transaction, so the stored response exists if and only if the decision does.

- Same key, same body, completed: the stored response, nothing else done.
- Same key, other body: 422.
- Same key while the first request is still running: 409.
- A claim whose request failed is released, so the client may retry; one
  left behind by a crashed process or a cut connection is taken over after
  ``STALE_AFTER`` (seconds).

Keys are scoped to the caller's prescriber or pharmacy and to the endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rems_service.db.repository import IdempotencyClaim, Repository, StaleClaim, StoredResponse
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor
from workflows.audit import digest

from .decisions import DecisionAnswer
from .errors import Conflict, Invalid

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
#: An unfinished claim older than this belongs to a request that died (its process, or its
#: database connection before the release could run). A decision takes milliseconds; a
#: claim taken over from a request still running cannot double the decision (``complete``
#: refuses a claim taken over meanwhile), so a short window costs nothing in safety.
STALE_AFTER = timedelta(seconds=10)
MAX_KEY_LENGTH = 255

Claim = IdempotencyClaim


def _in_flight(message: str = f"A request with this {HEADER} is still being processed; retry shortly.") -> Conflict:
    return Conflict(message, {HEADER: ["In flight."]})


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
        found = uow.repo.claim_idempotency_key(scope, endpoint, key, request_digest)
        if isinstance(found, IdempotencyClaim):
            uow.commit()
            return found
        if found.request_digest != request_digest:
            raise Invalid(
                f"This {HEADER} was used with a different request body.",
                {HEADER: ["Already used with a different request body."]},
            )
        if found.response_body is not None:
            return StoredResponse(found.response_status or 201, found.response_body)
        now = uow.repo.database_now()
        if now - found.created_at < STALE_AFTER:
            raise _in_flight()
        taken = uow.repo.take_over_claim(found, now)
        if taken is None:
            raise _in_flight()
        uow.commit()
        return taken


def complete(repo: Repository, claimed: Claim | None, body: str, status: int = 201) -> None:
    """Store the response in the caller's (the decision's) transaction; ``Conflict`` if
    another process took the claim over meanwhile (the decision must not be made twice)."""
    if claimed is None:
        return
    try:
        repo.complete_idempotency_claim(claimed, status, body)
    except StaleClaim:
        raise _in_flight(f"A request with this {HEADER} is being processed elsewhere.") from None


def release(uow: UnitOfWork, claimed: Claim) -> None:
    """Forget an unfinished claim after its request failed, so the client can retry."""
    with uow:
        uow.repo.release_idempotency_claim(claimed)
        uow.commit()


def run(
    uow_factory: Callable[[], UnitOfWork],
    actor: Actor,
    endpoint: str,
    key: str | None,
    request: Any,
    decide: Callable[[Claim | None], DecisionAnswer],
) -> DecisionAnswer:
    """Run the use case ``decide`` at most once per key.

    ``decide(claim)`` makes and records the decision and, in the same
    transaction, stores its response with ``complete``. A key already
    completed returns the stored response (``replayed``), and nothing else runs.
    """
    if key is None:
        return decide(None)
    outcome = claim(uow_factory(), scope_of(actor), endpoint, validate_key(key), request)
    if isinstance(outcome, StoredResponse):
        return DecisionAnswer(body=outcome.body, replayed=True, status=outcome.status)
    try:
        return decide(outcome)
    except BaseException:
        try:
            release(uow_factory(), outcome)
        except Exception as exc:  # the database went away: the claim expires after STALE_AFTER
            log.warning("idempotency claim not released", extra={"error": type(exc).__name__})
        raise
