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
    secret = fields.String(
        metadata={
            "description": "HMAC-SHA256 key of `X-Rems-Signature` and `X-Rems-Timestamped-Signature`; shown only here."
        }
    )


#: The coarse outcomes of a delivery attempt (``webhook_transport.OUTCOMES``).
OUTCOME_DESCRIPTION = (
    "`delivered` (2xx), `refused` (the receiver answered another status: see `status_code`), "
    "`unreachable` (the target could not be reached or may not receive webhooks) or `timed_out`."
)


class WebhookSecretRotateSchema(RequestSchema):
    previous_valid_seconds = fields.Integer(
        validate=validate.Range(min=0, max=7 * 86400),
        metadata={
            "description": "How long the old secret still signs a second `v1=` of "
            "`X-Rems-Timestamped-Signature` (0: at once no more, after a leak)."
        },
    )


class WebhookSecretSchema(WebhookCreatedSchema):
    secret_rotated_at = fields.AwareDateTime()
    previous_secret_expires_at = fields.AwareDateTime(allow_none=True)


class WebhookAttemptSchema(Schema):
    attempt = fields.Integer()
    attempted_at = fields.AwareDateTime()
    outcome = fields.String(allow_none=True, metadata={"description": OUTCOME_DESCRIPTION})
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "The raw error; admins only."})
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
    last_outcome = fields.String(allow_none=True, metadata={"description": OUTCOME_DESCRIPTION})
    last_error = fields.String(allow_none=True, metadata={"description": "The raw error; admins only."})
    created_at = fields.AwareDateTime()
    log = fields.List(fields.Nested(WebhookAttemptSchema))


class WebhookDeliveriesSchema(Schema):
    items = fields.List(fields.Nested(WebhookDeliverySchema))
