"""Webhook subscriptions and deliveries (API.md, Webhooks).

Deliveries are rows: one per (subscription, event), holding the exact signed
body. An attempt *claims* the delivery for a lease (so two deliverers never
post it at once, and a deliverer killed mid-request is retried once the
lease ends), posts it with ``X-Rems-Signature: sha256=<HMAC>`` and
``X-Rems-Timestamped-Signature: t=<unix seconds>,v1=<HMAC of "<t>.<body>">``
(a second ``v1`` with a rotated-out secret while it is still valid), logs the
attempt, and either marks it delivered or schedules the next attempt with
exponential backoff up to a cap and a maximum number of attempts.
At-least-once: receivers dedupe on the body's ``id`` (the event id).

Targets are checked at subscription and before every attempt
(``webhook_targets``), each owner has at most ``WEBHOOK_MAX_SUBSCRIPTIONS``
live subscriptions, and the posting itself is pinned and bounded
(``webhook_transport``). Subscribers see each attempt's coarse outcome only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rems_service import metrics
from rems_service.db.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from rems_service.db.uow import UnitOfWork
from rems_service.db.webhook_store import CANCELLED, DELIVERED, FAILED, PENDING, WebhookStore
from workflows.actors import Actor, UserRole
from workflows.audit import canonical_json

from . import webhook_targets, webhook_transport
from .errors import Conflict, Forbidden, Invalid, NotFound
from .paging import DEFAULT_LIMIT, Page, PageRequest, page_of

__all__ = ["CANCELLED", "DELIVERED", "FAILED", "PENDING"]
SIGNATURE_HEADER = "X-Rems-Signature"
TIMESTAMPED_SIGNATURE_HEADER = "X-Rems-Timestamped-Signature"
NOT_FOUND = "Webhook not found."


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_timestamped(secrets_: list[str], body: bytes, timestamp: int) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` with one ``v1`` per secret
    (the current one first, then a rotated-out one still valid), as Stripe's webhooks do."""
    signed = str(timestamp).encode() + b"." + body
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}" for secret in secrets_]
    return ",".join(parts)


def _scope(actor: Actor) -> dict[str, Any]:
    if actor.role == UserRole.PRESCRIBER.value:
        return {"prescriber_id": actor.prescriber_id}
    if actor.role == UserRole.PHARMACIST.value:
        return {"pharmacy_id": actor.pharmacy_id}
    if actor.is_admin:
        return {}
    raise Forbidden(f"The {actor.role} role may not subscribe to events.")


def check_target(url: str, settings: dict[str, Any]) -> None:
    """Raise ``Invalid`` (422 naming ``url``) unless ``url`` may receive webhooks."""
    try:
        webhook_targets.check(url, webhook_targets.TargetPolicy.of(settings))
    except webhook_targets.TargetRefused as exc:
        raise Invalid(f"url: {exc}", {"url": [str(exc)]}) from None


def create(
    uow: UnitOfWork, actor: Actor, now: datetime, settings: dict[str, Any], *, url: str, events: list[str]
) -> WebhookSubscription:
    """Subscribe ``url`` to ``events``; a prescriber's or pharmacist's subscription is
    bound to its prescriber or pharmacy. The secret is returned here only.

    Raises ``Forbidden`` (a role without subscriptions), ``Invalid`` (a target that may
    not receive webhooks: its form, or where its host resolves) or ``Conflict`` (the
    owner already has ``WEBHOOK_MAX_SUBSCRIPTIONS`` live subscriptions)."""
    scope = _scope(actor)
    check_target(url, settings)
    cap = int(settings["WEBHOOK_MAX_SUBSCRIPTIONS"])
    with uow:
        owner = scope or {"created_by": actor.user_id}
        uow.webhooks.lock_owner(**owner)  # the cap holds under concurrent subscriptions
        if uow.webhooks.live_count(**owner) >= cap:
            raise Conflict(
                f"At most {cap} live webhook subscriptions per owner: delete one first.",
                {"url": [f"The limit of {cap} live subscriptions is reached."]},
            )
        # Database time, like the outbox's: a subscription receives the events written after it.
        row = WebhookSubscription(
            url=url,
            events=sorted(set(events)),
            secret=secrets.token_hex(32),
            created_by=actor.user_id,
            created_at=uow.webhooks.database_now(),
            **scope,
        )
        uow.webhooks.add(row)
        uow.commit()
        return row


def _owned(actor: Actor, row: WebhookSubscription | None) -> bool:
    if row is None or row.deleted_at is not None:
        return False
    if actor.is_admin:
        return True
    if actor.role == UserRole.PRESCRIBER.value:
        return row.prescriber_id is not None and row.prescriber_id == actor.prescriber_id
    if actor.role == UserRole.PHARMACIST.value:
        return row.pharmacy_id is not None and row.pharmacy_id == actor.pharmacy_id
    return False


def rotate_secret(
    uow: UnitOfWork, actor: Actor, now: datetime, subscription_id: uuid.UUID, previous_valid_seconds: int
) -> WebhookSubscription:
    """Give the subscription a new secret (returned here only). The old one stops signing
    ``X-Rems-Signature`` at once and still signs a second ``v1`` of
    ``X-Rems-Timestamped-Signature`` for ``previous_valid_seconds`` (0: never again), so a
    receiver can switch without losing deliveries; a leaked secret is rotated with 0."""
    with uow:
        row = uow.webhooks.subscription(subscription_id, lock=True)
        if row is None or not _owned(actor, row):
            raise NotFound(NOT_FOUND)
        database_now = uow.webhooks.database_now()
        if previous_valid_seconds > 0:
            row.previous_secret = row.secret
            row.previous_secret_expires_at = database_now + timedelta(seconds=previous_valid_seconds)
        else:
            row.previous_secret = row.previous_secret_expires_at = None
        row.secret = secrets.token_hex(32)
        row.secret_rotated_at = database_now
        uow.commit()
        return row


def delete(uow: UnitOfWork, actor: Actor, now: datetime, subscription_id: uuid.UUID) -> None:
    """Stop the subscription; deliveries still pending are cancelled."""
    with uow:
        row = uow.webhooks.subscription(subscription_id, lock=True)
        if row is None or not _owned(actor, row):
            raise NotFound(NOT_FOUND)
        row.deleted_at = now
        for delivery in uow.webhooks.pending_deliveries(row.id):
            delivery.status, delivery.next_attempt_at = CANCELLED, None
        uow.commit()


def outcome_of(outcome: str | None, status_code: int | None) -> str | None:
    """The coarse outcome; for attempts logged before outcomes were stored, derived from the status."""
    if outcome is not None or status_code is None:
        return outcome or (None if status_code is None else webhook_transport.UNREACHABLE)
    return webhook_transport.DELIVERED if 200 <= status_code < 300 else webhook_transport.REFUSED


@dataclass(frozen=True)
class DeliveryView:
    """A delivery with its attempts as the caller may see them: the coarse outcome and the
    receiver's status code for everyone; the raw error (addresses, connection errors) for
    admins only, so a subscription is never a way to probe the service's network."""

    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]
    operator: bool = False

    def as_dict(self) -> dict[str, Any]:
        row = self.delivery
        last = self.attempts[-1] if self.attempts else None
        found: dict[str, Any] = {
            "id": row.id,
            "event_id": row.event_id,
            "event_type": row.event_type,
            "status": row.status,
            "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at,
            "delivered_at": row.delivered_at,
            "last_status_code": row.last_status_code,
            "last_outcome": outcome_of(row.last_outcome or (last.outcome if last else None), row.last_status_code),
            "created_at": row.created_at,
            "log": [
                {
                    "attempt": a.attempt,
                    "attempted_at": a.attempted_at,
                    "outcome": outcome_of(a.outcome, a.status_code),
                    "status_code": a.status_code,
                    "duration_ms": a.duration_ms,
                    **({"error": a.error} if self.operator else {}),
                }
                for a in self.attempts
            ],
        }
        if self.operator:
            found["last_error"] = row.last_error
        return found


def deliveries(uow: UnitOfWork, actor: Actor, subscription_id: uuid.UUID, limit: int = 100) -> list[DeliveryView]:
    """The subscription's deliveries, newest first, each with its attempts."""
    with uow:
        if not _owned(actor, uow.webhooks.subscription(subscription_id)):
            raise NotFound(NOT_FOUND)
        return [
            DeliveryView(row, list(uow.webhooks.attempts(row.id)), operator=actor.is_admin)
            for row in uow.webhooks.deliveries(subscription_id, limit)
        ]


def _matches(subscription: WebhookSubscription, event: OutboxEvent) -> bool:
    if event.type not in subscription.events or event.created_at < subscription.created_at:
        return False
    data = event.payload
    if subscription.prescriber_id is not None:
        return data.get("prescriber_id") == str(subscription.prescriber_id)
    if subscription.pharmacy_id is not None:
        return data.get("pharmacy_id") == str(subscription.pharmacy_id)
    return True


def body_of(event: OutboxEvent) -> str:
    """The payload POSTed for ``event``: ``{id, type, occurred_at, data}``."""
    return canonical_json({"id": event.id, "type": event.type, "occurred_at": event.occurred_at, "data": event.payload})


def fan_out(store: WebhookStore, event: OutboxEvent, now: datetime) -> list[uuid.UUID]:
    """Create the deliveries ``event`` owes (in the caller's transaction); return their ids."""
    created = []
    for subscription in store.live_subscriptions():
        if not _matches(subscription, event):
            continue
        delivery = WebhookDelivery(
            subscription_id=subscription.id,
            event_id=event.id,
            event_type=event.type,
            body=body_of(event),
            status=PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        if store.add_delivery_unless_owed(delivery):  # already owed (a re-sent event): never twice
            created.append(delivery.id)
    return created


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: uuid.UUID
    attempt: int
    delivered: bool
    next_attempt_at: datetime | None


def backoff(settings: dict[str, Any], attempt: int) -> timedelta:
    """Exponential: base × 2^(attempt−1), capped."""
    seconds = min(settings["WEBHOOK_BACKOFF_SECONDS"] * 2 ** (attempt - 1), settings["WEBHOOK_BACKOFF_CAP_SECONDS"])
    return timedelta(seconds=seconds)


def _claim(
    uow: UnitOfWork, delivery_id: uuid.UUID, now: datetime, lease: timedelta
) -> tuple[WebhookSubscription, WebhookDelivery] | None:
    with uow:
        row = uow.webhooks.delivery(delivery_id, skip_locked=True)
        if row is None or row.status != PENDING or (row.next_attempt_at is not None and row.next_attempt_at > now):
            return None
        subscription = uow.webhooks.subscription(row.subscription_id)
        if subscription is None or subscription.deleted_at is not None:
            row.status, row.next_attempt_at = CANCELLED, None
            uow.commit()
            return None
        row.attempts += 1
        row.next_attempt_at = now + lease
        uow.commit()  # the sessions keep loaded values after commit (expire_on_commit=False)
        return subscription, row


def signing_secrets(subscription: WebhookSubscription, now: datetime) -> list[str]:
    """The secrets signing a delivery now: the current one, then a rotated-out one still valid."""
    found = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and expires > now:
        found.append(subscription.previous_secret)
    return found


def headers_for(
    subscription: WebhookSubscription, delivery: WebhookDelivery, raw: bytes, now: datetime
) -> dict[str, str]:
    """The headers of one attempt (the timestamp is the attempt's own: a retry is re-signed)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "rems-webhooks/1",
        SIGNATURE_HEADER: sign(subscription.secret, raw),
        TIMESTAMPED_SIGNATURE_HEADER: sign_timestamped(signing_secrets(subscription, now), raw, int(time.time())),
        "X-Rems-Event": delivery.event_type,
        "X-Rems-Delivery": str(delivery.id),
    }


def _post(
    subscription: WebhookSubscription, delivery: WebhookDelivery, settings: dict[str, Any], now: datetime
) -> webhook_transport.PostResult:
    raw = delivery.body.encode()
    return webhook_transport.post(
        subscription.url,
        raw,
        headers_for(subscription, delivery, raw, now),
        webhook_targets.TargetPolicy.of(settings),
        webhook_transport.Limits.of(settings),
    )


def attempt(uow_factory: Any, settings: dict[str, Any], delivery_id: uuid.UUID, now_fn: Any) -> AttemptResult | None:
    """Try one delivery now if it is due and nobody else holds it; log the attempt.

    Returns None when there was nothing to do (delivered, cancelled, not due,
    or claimed by another deliverer).
    """
    lease = timedelta(seconds=settings["WEBHOOK_LEASE_SECONDS"])
    claimed = _claim(uow_factory(), delivery_id, now_fn(), lease)
    if claimed is None:
        return None
    subscription, claimed_delivery = claimed
    number = claimed_delivery.attempts
    posted = _post(subscription, claimed_delivery, settings, now_fn())
    metrics.WEBHOOK_DELIVERIES.labels(outcome=posted.outcome).inc()
    status_code, duration_ms = posted.status_code, posted.duration_ms
    error = None if posted.outcome == webhook_transport.DELIVERED else (posted.error or posted.outcome)
    now = now_fn()
    with uow_factory() as uow:
        row = uow.webhooks.delivery(delivery_id, lock=True)
        assert row is not None, "deliveries are never deleted"
        uow.webhooks.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                attempt=number,
                attempted_at=now,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
                outcome=posted.outcome,
            )
        )
        next_at = None
        if row.attempts == number and row.status == PENDING:  # nobody took the delivery over meanwhile
            row.last_status_code, row.last_error, row.last_outcome = status_code, error, posted.outcome
            if error is None:
                row.status, row.delivered_at, row.next_attempt_at = DELIVERED, now, None
            elif number >= settings["WEBHOOK_MAX_ATTEMPTS"]:
                row.status, row.next_attempt_at = FAILED, None
            else:
                next_at = row.next_attempt_at = now + backoff(settings, number)
        uow.commit()
    return AttemptResult(delivery_id, number, error is None, next_at)


def due(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[uuid.UUID]:
    """Deliveries whose next attempt is due (the retry sweep's rows, by index)."""
    with uow:
        return uow.webhooks.due(now, limit)


#: The subscriptions listing's cursor tag and key: (``created_at``, ``id``), newest first.
LISTING = "webhooks"
LISTING_KEY = (datetime, uuid.UUID)


def listing(
    uow: UnitOfWork, actor: Actor, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[WebhookSubscription]:
    """The caller's live subscriptions, newest first, as ``_owned`` reads them: a prescriber's
    or a pharmacy's own, every one for admins. Secrets stay with the rows (never listed)."""
    request = PageRequest.of(cursor, limit, LISTING, LISTING_KEY)
    if actor.is_admin:
        owner: dict[str, Any] = {"everyone": True}
    elif actor.role == UserRole.PRESCRIBER.value and actor.prescriber_id is not None:
        owner = {"prescriber_id": actor.prescriber_id}
    elif actor.role == UserRole.PHARMACIST.value and actor.pharmacy_id is not None:
        owner = {"pharmacy_id": actor.pharmacy_id}
    else:
        raise Forbidden(f"The {actor.role} role has no event subscriptions.")
    with uow:
        rows = uow.webhooks.subscriptions_page(request.after, request.fetch, **owner)
    return page_of(rows, request.limit, LISTING, lambda row: (row.created_at, row.id))
