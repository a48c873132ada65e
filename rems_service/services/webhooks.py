"""Webhook subscriptions and deliveries (API.md, Webhooks).

Deliveries are rows: one per (subscription, event), holding the exact signed
body. An attempt *claims* the delivery for a lease (so two deliverers never
post it at once, and a deliverer killed mid-request is retried once the
lease ends), posts it with ``X-Rems-Signature: sha256=<HMAC>``, logs the
attempt, and either marks it delivered or schedules the next attempt with
exponential backoff up to a cap and a maximum number of attempts.
At-least-once: receivers dedupe on the body's ``id`` (the event id).
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

import requests

from rems_service.db.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from rems_service.db.uow import UnitOfWork
from rems_service.db.webhook_store import CANCELLED, DELIVERED, FAILED, PENDING, WebhookStore
from workflows.actors import Actor, UserRole
from workflows.audit import canonical_json

from .errors import Forbidden, NotFound
from .paging import DEFAULT_LIMIT, Page, PageRequest, page_of

__all__ = ["CANCELLED", "DELIVERED", "FAILED", "PENDING"]
SIGNATURE_HEADER = "X-Rems-Signature"
NOT_FOUND = "Webhook not found."


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def create(uow: UnitOfWork, actor: Actor, now: datetime, *, url: str, events: list[str]) -> WebhookSubscription:
    """Subscribe ``url`` to ``events``; a prescriber's or pharmacist's subscription is
    bound to its prescriber or pharmacy. The secret is returned here only."""
    if actor.role == UserRole.PRESCRIBER.value:
        scope: dict[str, Any] = {"prescriber_id": actor.prescriber_id}
    elif actor.role == UserRole.PHARMACIST.value:
        scope = {"pharmacy_id": actor.pharmacy_id}
    elif actor.is_admin:
        scope = {}
    else:
        raise Forbidden(f"The {actor.role} role may not subscribe to events.")
    with uow:
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


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def deliveries(uow: UnitOfWork, actor: Actor, subscription_id: uuid.UUID, limit: int = 100) -> list[DeliveryView]:
    """The subscription's deliveries, newest first, each with its attempts."""
    with uow:
        if not _owned(actor, uow.webhooks.subscription(subscription_id)):
            raise NotFound(NOT_FOUND)
        return [
            DeliveryView(row, list(uow.webhooks.attempts(row.id)))
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


def _post(
    subscription: WebhookSubscription, delivery: WebhookDelivery, timeout: float
) -> tuple[int | None, str | None, int]:
    raw = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(subscription.secret, raw),
        "X-Rems-Event": delivery.event_type,
        "X-Rems-Delivery": str(delivery.id),
    }
    started = time.monotonic()
    try:
        response = requests.post(subscription.url, data=raw, headers=headers, timeout=timeout, allow_redirects=False)
        return (
            response.status_code,
            None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
            int((time.monotonic() - started) * 1000),
        )
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500], int((time.monotonic() - started) * 1000)


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
    status_code, error, duration_ms = _post(subscription, claimed_delivery, settings["WEBHOOK_TIMEOUT_SECONDS"])
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
            )
        )
        next_at = None
        if row.attempts == number and row.status == PENDING:  # nobody took the delivery over meanwhile
            row.last_status_code, row.last_error = status_code, error
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
