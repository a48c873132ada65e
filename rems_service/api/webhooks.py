"""Webhook subscriptions (API.md, Webhooks)."""

from __future__ import annotations

from uuid import UUID

from flask_smorest import Blueprint

from rems_service.auth import current_actor, protect, roles
from rems_service.clock import request_now
from rems_service.db.models import UserRole
from rems_service.runtime import get_runtime
from rems_service.schemas.webhooks import WebhookCreatedSchema, WebhookCreateSchema, WebhookDeliveriesSchema
from rems_service.services import webhooks

blp = protect(Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks", description="Event subscriptions"))

SUBSCRIBERS = (UserRole.ADMIN, UserRole.PRESCRIBER, UserRole.PHARMACIST)


@blp.route("", methods=["POST"])
@roles(*SUBSCRIBERS)
@blp.arguments(WebhookCreateSchema)
@blp.response(201, WebhookCreatedSchema)
def create(args):
    """Subscribe a URL to events. A prescriber's or pharmacist's subscription receives
    only events about its own patients or pharmacy. Each delivery is signed:
    `X-Rems-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>`."""
    return webhooks.create(get_runtime().uow(), current_actor(), request_now(), **args)


@blp.route("/<uuid:webhook_id>/deliveries", methods=["GET"])
@roles(*SUBSCRIBERS)
@blp.response(200, WebhookDeliveriesSchema)
def deliveries(webhook_id: UUID):
    """The newest deliveries with every attempt (status code or error, duration)."""
    views = webhooks.deliveries(get_runtime().uow(), current_actor(), webhook_id)
    return {"items": [{**v.delivery.model_dump(), "log": [a.model_dump() for a in v.attempts]} for v in views]}


@blp.route("/<uuid:webhook_id>", methods=["DELETE"])
@roles(*SUBSCRIBERS)
@blp.response(204)
def delete(webhook_id: UUID):
    """Stop the subscription; deliveries still pending are cancelled."""
    webhooks.delete(get_runtime().uow(), current_actor(), request_now(), webhook_id)
