"""The list endpoints' query strings and pages, and ``GET /me`` (API.md: lists, ``/me``).

Every page is ``{items, next_cursor}``: ``next_cursor`` is null on the last
page, else it is sent back as ``cursor`` (with the same filters) for the next.
Query strings are closed like request bodies: an unknown parameter is a 422.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from rems_service.services.paging import DEFAULT_LIMIT, MAX_LIMIT
from workflows.actors import UserRole
from workflows.authorizations import AuthorizationStatus
from workflows.dispenses import DispenseStatus
from workflows.patients import PatientStatus, RiskCategory
from workflows.rules import Rule

from .audit import DayOrInstant
from .common import CURSOR_CHARACTERS, RequestSchema
from .decisions import AuthorizationSchema, DispenseSchema
from .webhooks import WebhookSchema


def _values(enum: Any) -> list[str]:
    return [e.value for e in enum]


class PageQuerySchema(RequestSchema):
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Items per page (1 to {MAX_LIMIT})."},
    )
    cursor = fields.String(
        validate=[validate.Length(min=1, max=300), CURSOR_CHARACTERS],
        metadata={"description": "The previous page's `next_cursor`; send the same filters with it."},
    )


class PatientListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(_values(PatientStatus)))
    risk_category = fields.String(validate=validate.OneOf(_values(RiskCategory)))
    test_due_before = DayOrInstant(
        metadata={
            "description": "Patients whose next pregnancy test is due before this instant (a date: that day's "
            "start in the program's time zone). Reads the reminder mirror `next_test_due_at`, recomputed at each "
            "recorded test, survey or hand-over; `GET /patients/{id}` computes the testing status now."
        }
    )
    survey_due_before = DayOrInstant(
        metadata={
            "description": "Patients whose next survey is due before this instant (a date: that day's start in the "
            "program's time zone); reads the reminder mirror `next_survey_due_at`."
        }
    )
    q = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "Name search: every word must occur in the first or last name, in any case "
            "(ASCII letters only on SQLite)."
        },
    )


class AuthorizationListQuerySchema(PageQuerySchema):
    patient_id = fields.UUID(metadata={"description": "One patient's authorizations."})
    status = fields.String(
        validate=validate.OneOf(_values(AuthorizationStatus)),
        metadata={"description": "The status at the request's time, computed like `GET /authorizations/{number}`."},
    )


class DispenseListQuerySchema(PageQuerySchema):
    status = fields.String(
        validate=validate.OneOf(_values(DispenseStatus)),
        metadata={
            "description": "The status at the request's time (a confirmation past its window is `lapsed`). "
            "`confirmed` lists the hand-over queue by window end, least time left first; otherwise newest first."
        },
    )


class WebhookListQuerySchema(PageQuerySchema):
    pass


class EmptyQuerySchema(RequestSchema):
    """No query parameters."""


class PatientListItemSchema(Schema):
    id = fields.UUID()
    rems_patient_id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    risk_category = fields.Enum(RiskCategory, by_value=True)
    status = fields.Enum(PatientStatus, by_value=True)
    prescriber_id = fields.UUID()
    enrolled_at = fields.AwareDateTime()
    next_test_due_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "Reminder mirror (null when no test is required)."}
    )
    next_survey_due_at = fields.AwareDateTime(allow_none=True, metadata={"description": "Reminder mirror."})


class PatientPageSchema(Schema):
    items = fields.List(fields.Nested(PatientListItemSchema))
    next_cursor = fields.String(allow_none=True)


class AuthorizationListItemSchema(AuthorizationSchema):
    patient_id = fields.UUID()
    confirmation_expires_at = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "While a dispense confirmation holds it: when the hand-over window ends."},
    )


class AuthorizationPageSchema(Schema):
    items = fields.List(fields.Nested(AuthorizationListItemSchema))
    next_cursor = fields.String(allow_none=True)


class DispenseListItemSchema(DispenseSchema):
    pharmacist_user_id = fields.UUID()


class DispensePageSchema(Schema):
    items = fields.List(fields.Nested(DispenseListItemSchema))
    next_cursor = fields.String(allow_none=True)


class WebhookPageSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema), metadata={"description": "Without secrets."})
    next_cursor = fields.String(allow_none=True)


class MeSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    role = fields.Enum(UserRole, by_value=True)
    prescriber_id = fields.UUID(allow_none=True)
    pharmacy_id = fields.UUID(allow_none=True)
    training_completed_at = fields.AwareDateTime(allow_none=True)
    trained = fields.Boolean(
        allow_none=True,
        metadata={"description": f"Pharmacists: REMS training completed ({Rule.R_PHA_3.value}); null otherwise."},
    )
    created_at = fields.AwareDateTime()
