"""The auditor's API: filters, entries, verification (API.md, Audit)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from marshmallow import Schema, fields, validate

from rems_service.services.audit_log import AUDIT_ACTIONS, DEFAULT_LIMIT, MAX_LIMIT
from workflows.audit import OUTCOME_APPROVED, OUTCOME_COMPLETED, OUTCOME_DENIED
from workflows.rules import Code

from .common import CURSOR_CHARACTERS, RequestSchema

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


class DayOrInstant(fields.Field[date | datetime]):
    """A date (``2026-11-27``: that day's start in the program's time zone, resolved by the
    service) or a date and time with a UTC offset (``2026-11-26T10:00:00Z``)."""

    def __init__(self, **kwargs: Any):
        metadata = {"type": "string", "example": "2026-11-27", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    #: Under a key of its own: the shared wording (schemas.common) replaces only the library's keys.
    default_error_messages = {
        "day_or_instant": "Expected a date (e.g. 2026-11-27, that day's start in the program's time zone) "
        "or a date and time with a UTC offset (e.g. 2026-11-26T10:00:00Z)."
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date | datetime:
        if not isinstance(value, str):
            raise self.make_error("day_or_instant")
        text = value.strip()
        try:
            if _DATE_ONLY.fullmatch(text):
                return date.fromisoformat(text)
            instant = datetime.fromisoformat(text)
        except ValueError:
            raise self.make_error("day_or_instant") from None
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise self.make_error("day_or_instant")
        return instant


def _reference(kind: str, example: str) -> fields.String:
    return fields.String(
        validate=validate.Length(min=1, max=40),
        metadata={
            "description": f"Entries naming this {kind}, in any case; in numbers O reads as 0 and I or L as 1.",
            "example": example,
        },
    )


class AuditFilterSchema(RequestSchema):
    action = fields.String(
        validate=validate.OneOf(AUDIT_ACTIONS),
        metadata={
            "description": "What was recorded: a decision (`authorization.decided`, `dispense.decided`), a state "
            "change or registration (named by its event), or an auditor's read (`audit.read`)."
        },
    )
    outcome = fields.String(validate=validate.OneOf([OUTCOME_APPROVED, OUTCOME_DENIED, OUTCOME_COMPLETED]))
    reason = fields.String(validate=validate.OneOf([c.value for c in Code]), metadata={"description": "A reason code."})
    pharmacy_id = fields.UUID()
    prescriber_id = fields.UUID()
    rems_patient_id = _reference("REMS patient id (a patient-mismatch denial names both patients)", "RP-7K2M9-Q4XNB")
    authorization_number = _reference("authorization number", "RA-7K2M9-Q4XNB-T3V8P")
    confirmation_number = _reference("confirmation number", "RC-7K2M9-Q4XNB-T3V8P")
    since = DayOrInstant(
        metadata={
            "description": "Effective time, inclusive: a date and time with a UTC offset, or a date "
            "(that day's start in the program's time zone)."
        }
    )
    until = DayOrInstant(
        metadata={
            "description": "Effective time, exclusive: a date and time with a UTC offset, or a date "
            "(that day's start in the program's time zone, so `until=2026-11-28` ends with 27 November)."
        }
    )
    include_reads = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Include the auditors' own `audit.read` entries (always recorded; hidden by default)."
        },
    )


class AuditListQuerySchema(AuditFilterSchema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(validate=[validate.Length(min=1, max=200), CURSOR_CHARACTERS])


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


class UnsignedSchema(Schema):
    count = fields.Integer(metadata={"description": "Entries without a MAC (written before MACs existed)."})
    through_seq = fields.Integer(allow_none=True, metadata={"description": "The last of them."})
    anchored_by_seq = fields.Integer(
        allow_none=True, metadata={"description": "The first matching published anchor covering them (CLI only)."}
    )


class AuditVerifySchema(Schema):
    valid = fields.Boolean()
    checked = fields.Integer()
    head_seq = fields.Integer()
    head_hash = fields.String()
    first_invalid_seq = fields.Integer(allow_none=True)
    invalid_reason = fields.String(
        allow_none=True,
        metadata={
            "description": "Why the first invalid entry fails: sequence, link, hash, mac (keyed MAC), head, anchor."
        },
    )
    mode = fields.String()
    started_after_seq = fields.Integer()
    unsigned = fields.Nested(UnsignedSchema)
    anchor = fields.Nested(AnchorSchema)
