"""Webhook subscriptions (API.md, Webhooks)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import RAISE

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.lists import WebhookListQuerySchema, WebhookPageSchema
from rems_service.schemas.webhooks import WebhookCreatedSchema, WebhookCreateSchema, WebhookDeliveriesSchema
from rems_service.services import webhooks
from workflows.actors import UserRole

blp = protect(Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks", description="Event subscriptions"))

SUBSCRIBERS = (UserRole.ADMIN, UserRole.PRESCRIBER, UserRole.PHARMACIST)


@blp.route("", methods=["POST"])
@roles(*SUBSCRIBERS)
@blp.arguments(WebhookCreateSchema)
@blp.response(201, WebhookCreatedSchema)
def create(args: dict[str, Any]) -> Any:
    """Subscribe a URL to events. A prescriber's or pharmacist's subscription receives
    only events about its own patients or pharmacy. Each delivery is signed:
    `X-Rems-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>`."""
    c = ctx()
    return webhooks.create(c.uow(), c.actor, c.now, **args)


@blp.route("", methods=["GET"])
@roles(*SUBSCRIBERS)
@blp.arguments(WebhookListQuerySchema, location="query", unknown=RAISE)
@blp.response(200, WebhookPageSchema)
def list_webhooks(args: dict[str, Any]) -> dict[str, Any]:
    """The caller's live subscriptions (a prescriber's or a pharmacy's own; every one for admins),
    newest first, without their secrets."""
    c = ctx()
    page = webhooks.listing(c.uow(), c.actor, **args)
    return {"items": page.items, "next_cursor": page.next_cursor}


@blp.route("/<uuid:webhook_id>/deliveries", methods=["GET"])
@roles(*SUBSCRIBERS)
@blp.response(200, WebhookDeliveriesSchema)
def deliveries(webhook_id: UUID) -> dict[str, Any]:
    """The newest deliveries with every attempt (status code or error, duration)."""
    c = ctx()
    views = webhooks.deliveries(c.uow(), c.actor, webhook_id)
    return {"items": [{**v.delivery.model_dump(), "log": [a.model_dump() for a in v.attempts]} for v in views]}


@blp.route("/<uuid:webhook_id>", methods=["DELETE"])
@roles(*SUBSCRIBERS)
@blp.response(204)
def delete(webhook_id: UUID) -> None:
    """Stop the subscription; deliveries still pending are cancelled."""
    c = ctx()
    webhooks.delete(c.uow(), c.actor, c.now, webhook_id)
