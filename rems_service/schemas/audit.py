"""The auditor's API: filters, entries, verification (API.md, Audit)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from rems_service.services.audit_log import DEFAULT_LIMIT, MAX_LIMIT
from workflows.audit import OUTCOME_APPROVED, OUTCOME_COMPLETED, OUTCOME_DENIED
from workflows.rules import Code

from .common import RequestSchema


class AuditFilterSchema(RequestSchema):
    action = fields.String(validate=validate.Length(min=1, max=64))
    outcome = fields.String(validate=validate.OneOf([OUTCOME_APPROVED, OUTCOME_DENIED, OUTCOME_COMPLETED]))
    reason = fields.String(validate=validate.OneOf([c.value for c in Code]), metadata={"description": "A reason code."})
    pharmacy_id = fields.UUID()
    prescriber_id = fields.UUID()
    rems_patient_id = fields.String(validate=validate.Length(min=1, max=32))
    since = fields.AwareDateTime(metadata={"description": "Effective time, inclusive."})
    until = fields.AwareDateTime(metadata={"description": "Effective time, exclusive."})


class AuditListQuerySchema(AuditFilterSchema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(min=1, max=200))


class AuditExportQuerySchema(AuditFilterSchema):
    format = fields.String(required=True, validate=validate.OneOf(["csv", "ndjson"]))


class AuditVerifyQuerySchema(RequestSchema):
    incremental = fields.Boolean(
        load_default=False, metadata={"description": "Start from the newest stored checkpoint."}
    )
    anchor = fields.String(
        metadata={
            "description": "SEQ:HASH from `rems audit anchor`: prove nothing up to it was truncated or rewritten."
        }
    )


class ActorSchema(Schema):
    user_id = fields.UUID(allow_none=True)
    role = fields.String()


class AuditEntrySchema(Schema):
    seq = fields.Integer()
    recorded_at = fields.AwareDateTime()
    effective_at = fields.AwareDateTime()
    actor = fields.Nested(ActorSchema)
    action = fields.String()
    outcome = fields.String()
    reasons = fields.List(fields.Dict())
    program_version = fields.String(allow_none=True)
    subject = fields.Dict()
    details = fields.Dict()
    inputs_digest = fields.String()
    prev_hash = fields.String()
    hash = fields.String()


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema))
    next_cursor = fields.String(allow_none=True)


class AnchorSchema(Schema):
    seq = fields.Integer()
    hash = fields.String()
    matches = fields.Boolean()


class AuditVerifySchema(Schema):
    valid = fields.Boolean()
    checked = fields.Integer()
    head_seq = fields.Integer()
    head_hash = fields.String()
    first_invalid_seq = fields.Integer(allow_none=True)
    mode = fields.String()
    started_after_seq = fields.Integer()
    anchor = fields.Nested(AnchorSchema)
