"""Webhook subscriptions and their delivery log (API.md, Webhooks)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from workflows.events import EVENT_TYPES

from .common import RequestSchema


class WebhookCreateSchema(RequestSchema):
    url = fields.URL(required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000))
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
        metadata={"description": "Event types, e.g. `authorization.issued`, `pregnancy.reported`."},
    )


class WebhookSchema(Schema):
    id = fields.UUID()
    url = fields.String()
    events = fields.List(fields.String())
    prescriber_id = fields.UUID(allow_none=True)
    pharmacy_id = fields.UUID(allow_none=True)
    created_at = fields.AwareDateTime()


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(metadata={"description": "HMAC-SHA256 key of `X-Rems-Signature`; shown only here."})


class WebhookAttemptSchema(Schema):
    attempt = fields.Integer()
    attempted_at = fields.AwareDateTime()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class WebhookDeliverySchema(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    event_type = fields.String()
    status = fields.String(metadata={"description": "pending | delivered | failed | cancelled"})
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    log = fields.List(fields.Nested(WebhookAttemptSchema))


class WebhookDeliveriesSchema(Schema):
    items = fields.List(fields.Nested(WebhookDeliverySchema))
