"""Webhook subscriptions (API.md, Webhooks)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import RAISE

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.runtime import get_runtime
from rems_service.schemas.lists import WebhookListQuerySchema, WebhookPageSchema
from rems_service.schemas.webhooks import (
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookDeliveriesSchema,
    WebhookSecretRotateSchema,
    WebhookSecretSchema,
)
from rems_service.services import webhooks
from workflows.actors import UserRole

blp = protect(Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks", description="Event subscriptions"))

SUBSCRIBERS = (UserRole.ADMIN, UserRole.PRESCRIBER, UserRole.PHARMACIST)

#: What the service POSTs to a subscription's URL (an OpenAPI callback of ``POST /webhooks``).
DELIVERY_CALLBACK = {
    "event": {
        "{$request.body#/url}": {
            "post": {
                "summary": "One event, delivered at least once (dedupe on `id`)",
                "parameters": [
                    {
                        "in": "header",
                        "name": webhooks.SIGNATURE_HEADER,
                        "required": True,
                        "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                        "description": "`sha256=<hex HMAC-SHA256 of the raw body with the secret>`.",
                    },
                    {
                        "in": "header",
                        "name": webhooks.TIMESTAMPED_SIGNATURE_HEADER,
                        "required": True,
                        "schema": {"type": "string", "pattern": "^t=[0-9]+(,v1=[0-9a-f]{64})+$"},
                        "description": '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`: '
                        "compare `v1` in constant time and refuse a `t` more than a few minutes old "
                        "(a replay). Right after a rotation a second `v1` is made with the previous secret.",
                    },
                    {"in": "header", "name": "X-Rems-Event", "required": True, "schema": {"type": "string"}},
                    {
                        "in": "header",
                        "name": "X-Rems-Delivery",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["id", "type", "occurred_at", "data"],
                                "properties": {
                                    "id": {"type": "string", "format": "uuid"},
                                    "type": {"type": "string"},
                                    "occurred_at": {"type": "string", "format": "date-time"},
                                    "data": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "2XX": {"description": "Delivered."},
                    "default": {
                        "description": "Refused: retried with backoff. Redirects are not followed; an answer "
                        "is awaited for a limited time and read up to a limited size."
                    },
                },
            }
        }
    }
}


@blp.route("", methods=["POST"])
@roles(*SUBSCRIBERS)
@blp.arguments(WebhookCreateSchema)
@blp.response(201, WebhookCreatedSchema)
@blp.doc(callbacks=DELIVERY_CALLBACK)
def create(args: dict[str, Any]) -> Any:
    """Subscribe a URL to events. A prescriber's or pharmacist's subscription receives
    only events about its own patients or pharmacy. Each delivery is signed twice:
    `X-Rems-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>` and
    `X-Rems-Timestamped-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`
    (refuse a delivery whose `t` is too old: a replay).

    The target must be `https` in production and resolve only to public addresses
    (never loopback, link-local, private, unique-local, unspecified, multicast or
    reserved; loopback only where `REMS_WEBHOOK_ALLOW_LOOPBACK` allows it); it may not
    carry credentials. It is checked again before each delivery, redirects are not
    followed, and each owner has a limited number of live subscriptions (409 beyond)."""
    c = ctx()
    return webhooks.create(c.uow(), c.actor, c.now, get_runtime().settings, **args)


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
    """The newest deliveries with every attempt: its outcome (`delivered`, `refused` with the
    receiver's status code, `unreachable`, `timed_out`) and duration. The raw error of an
    attempt is shown to admins only."""
    c = ctx()
    views = webhooks.deliveries(c.uow(), c.actor, webhook_id)
    return {"items": [v.as_dict() for v in views]}


@blp.route("/<uuid:webhook_id>/secret", methods=["POST"])
@roles(*SUBSCRIBERS)
@blp.arguments(WebhookSecretRotateSchema, required=False)
@blp.response(200, WebhookSecretSchema)
def rotate_secret(args: dict[str, Any], webhook_id: UUID) -> Any:
    """Rotate the subscription's secret; the new one is shown only here.

    `X-Rems-Signature` uses the new secret from the next attempt on. The old secret
    still signs a second `v1=` of `X-Rems-Timestamped-Signature` for
    `previous_valid_seconds` (default: the service's grace period; `0` after a leak)."""
    c = ctx()
    grace = args.get("previous_valid_seconds", get_runtime().settings["WEBHOOK_SECRET_GRACE_SECONDS"])
    return webhooks.rotate_secret(c.uow(), c.actor, c.now, webhook_id, int(grace))


@blp.route("/<uuid:webhook_id>", methods=["DELETE"])
@roles(*SUBSCRIBERS)
@blp.response(204)
def delete(webhook_id: UUID) -> None:
    """Stop the subscription; deliveries still pending are cancelled."""
    c = ctx()
    webhooks.delete(c.uow(), c.actor, c.now, webhook_id)
