"""API users and their tokens (API.md, Users)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from rems_service.services.users import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from workflows.actors import UserRole
from workflows.rules import Rule

from .common import RequestSchema, text


class UserCreateSchema(RequestSchema):
    name = text(200)
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in UserRole]))
    prescriber_id = fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "Required for role prescriber."}
    )
    pharmacy_id = fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "Required for role pharmacist."}
    )
    training_completed_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": f"Pharmacists: when REMS training was completed ({Rule.R_PHA_3.value})."},
    )
    email = fields.String(
        load_default=None,
        validate=validate.Length(min=3, max=254),
        metadata={"description": "Portal sign-in: unique, case-insensitive. Required with `password`."},
    )
    password = fields.String(
        load_default=None,
        load_only=True,
        validate=validate.Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH),
        metadata={
            "description": f"Portal sign-in: at least {MIN_PASSWORD_LENGTH} characters; "
            "stored only as a slow salted hash (Argon2id), never returned."
        },
    )
    token_expires_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "When the token stops working (in the future); null or absent: it does not expire."},
    )


class TokenRequestSchema(RequestSchema):
    """``POST /users/{id}/token``: an optional expiry for the new token."""

    expires_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "When the new token stops working (in the future); absent: it does not expire."},
    )


class UserSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    role = fields.Enum(UserRole, by_value=True)
    prescriber_id = fields.UUID(allow_none=True)
    pharmacy_id = fields.UUID(allow_none=True)
    training_completed_at = fields.AwareDateTime(allow_none=True)
    email = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


class UserCreatedSchema(UserSchema):
    token = fields.String(metadata={"description": "The bearer token. Shown only in this response."})
    token_expires_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "Null: the token does not expire."}
    )


class UserAccountSchema(UserSchema):
    """A user as admins manage it (``GET /users``, disable, enable): never its token."""

    disabled = fields.Boolean(metadata={"description": "True: every token and portal session is refused."})
    disabled_at = fields.AwareDateTime(allow_none=True)
    token_expires_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "Null: the token does not expire."}
    )
    token_rotated_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When the current token replaced the previous one."}
    )


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserAccountSchema))
    next_cursor = fields.String(allow_none=True)


class TokenIssuedSchema(Schema):
    id = fields.UUID(metadata={"description": "The user's id."})
    token = fields.String(metadata={"description": "The new bearer token. Shown only in this response."})
    token_expires_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "Null: the token does not expire."}
    )
