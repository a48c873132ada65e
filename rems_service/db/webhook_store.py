"""Webhook subscriptions, deliveries and their attempts: reads and row locks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, false, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from .engine import database_now
from .models import OutboxEvent, Pharmacy, Prescriber, User, WebhookAttempt, WebhookDelivery, WebhookSubscription

#: Delivery statuses.
PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"


class WebhookStore:
    """Reads and writes of webhook rows on one session."""

    def __init__(self, session: Session):
        self.session = session

    def database_now(self) -> datetime:
        return database_now(self.session)

    def add(self, row: WebhookSubscription | WebhookAttempt) -> None:
        self.session.add(row)
        self.session.flush()

    def subscription(self, subscription_id: uuid.UUID, lock: bool = False) -> WebhookSubscription | None:
        return self.session.get(WebhookSubscription, subscription_id, with_for_update=lock)

    def live_subscriptions(self) -> Sequence[WebhookSubscription]:
        return self.session.exec(select(WebhookSubscription).where(col(WebhookSubscription.deleted_at).is_(None))).all()

    def lock_owner(
        self,
        *,
        prescriber_id: uuid.UUID | None = None,
        pharmacy_id: uuid.UUID | None = None,
        created_by: uuid.UUID | None = None,
    ) -> None:
        """Lock the subscriptions' owner row (its prescriber, pharmacy, or the admin user), so
        that concurrent subscriptions of one owner are counted one after the other."""
        if prescriber_id is not None:
            self.session.get(Prescriber, prescriber_id, with_for_update=True)
        elif pharmacy_id is not None:
            self.session.get(Pharmacy, pharmacy_id, with_for_update=True)
        elif created_by is not None:
            self.session.get(User, created_by, with_for_update=True)

    def live_count(
        self,
        *,
        prescriber_id: uuid.UUID | None = None,
        pharmacy_id: uuid.UUID | None = None,
        created_by: uuid.UUID | None = None,
    ) -> int:
        """How many live subscriptions one owner has: a prescriber's, a pharmacy's, or those an
        admin user created without either."""
        query = (
            select(func.count()).select_from(WebhookSubscription).where(col(WebhookSubscription.deleted_at).is_(None))
        )
        if prescriber_id is not None:
            query = query.where(WebhookSubscription.prescriber_id == prescriber_id)
        elif pharmacy_id is not None:
            query = query.where(WebhookSubscription.pharmacy_id == pharmacy_id)
        else:
            query = query.where(
                WebhookSubscription.created_by == created_by,
                col(WebhookSubscription.prescriber_id).is_(None),
                col(WebhookSubscription.pharmacy_id).is_(None),
            )
        return int(self.session.exec(query).one())

    def pending_deliveries(self, subscription_id: uuid.UUID) -> Sequence[WebhookDelivery]:
        return self.session.exec(
            select(WebhookDelivery).where(
                WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.status == PENDING
            )
        ).all()

    def deliveries(self, subscription_id: uuid.UUID, limit: int) -> Sequence[WebhookDelivery]:
        """The subscription's deliveries, newest first."""
        return self.session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(col(WebhookDelivery.created_at).desc())
            .limit(limit)
        ).all()

    def attempts(self, delivery_id: uuid.UUID) -> Sequence[WebhookAttempt]:
        return self.session.exec(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(col(WebhookAttempt.attempt))
        ).all()

    def add_delivery_unless_owed(self, delivery: WebhookDelivery) -> bool:
        """Insert ``delivery`` unless the (subscription, event) pair is already owed; True if inserted."""
        try:
            with self.session.begin_nested():
                self.session.add(delivery)
                self.session.flush()
        except IntegrityError:
            return False
        return True

    def delivery(self, delivery_id: uuid.UUID, lock: bool = False, skip_locked: bool = False) -> WebhookDelivery | None:
        """The delivery; with ``skip_locked`` None as well while another deliverer holds it."""
        if skip_locked:
            return self.session.exec(
                select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update(skip_locked=True)
            ).first()
        return self.session.get(WebhookDelivery, delivery_id, with_for_update=lock)

    def due(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Deliveries whose next attempt is due (the retry sweep's rows, by index)."""
        return list(
            self.session.exec(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == PENDING, col(WebhookDelivery.next_attempt_at) <= now)
                .order_by(col(WebhookDelivery.next_attempt_at))
                .limit(limit)
            ).all()
        )

    def event(self, event_id: uuid.UUID) -> OutboxEvent | None:
        return self.session.get(OutboxEvent, event_id)

    def subscriptions_page(
        self,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        *,
        prescriber_id: uuid.UUID | None = None,
        pharmacy_id: uuid.UUID | None = None,
        everyone: bool = False,
    ) -> Sequence[WebhookSubscription]:
        """Live subscriptions of one prescriber or one pharmacy (or, with ``everyone``, all),
        newest first by (``created_at``, ``id``), at most ``limit`` after the key ``after``.
        Without an owner or ``everyone`` there are none (never all by omission)."""
        query = select(WebhookSubscription).where(col(WebhookSubscription.deleted_at).is_(None))
        if not everyone:
            if prescriber_id is not None:
                query = query.where(WebhookSubscription.prescriber_id == prescriber_id)
            elif pharmacy_id is not None:
                query = query.where(WebhookSubscription.pharmacy_id == pharmacy_id)
            else:
                query = query.where(false())
        created, key = col(WebhookSubscription.created_at), col(WebhookSubscription.id)
        if after is not None:
            query = query.where(or_(created < after[0], and_(created == after[0], key < after[1])))
        return self.session.exec(query.order_by(created.desc(), key.desc()).limit(limit)).all()
