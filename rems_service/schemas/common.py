"""Pieces shared by the resource schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate


class RequestSchema(Schema):
    """Base of every request body: closed, unknown keys are refused."""

    class Meta:
        unknown = RAISE


def text(max_length: int, required: bool = True, **kwargs: Any) -> fields.String:
    """A trimmed, non-blank string of at most ``max_length`` characters."""
    return fields.String(
        required=required,
        validate=[validate.Length(min=1, max=max_length), validate.Regexp(r"\S", error="Must not be blank.")],
        **kwargs,
    )


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` only: ``"yes"``, ``1`` or ``"true"`` are refused.

    An attestation is a deliberate act; a truthy string must not count as one.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def must_be_true() -> fields.Boolean:
    return StrictBoolean(required=True, validate=validate.Equal(True, error="Must be true."))


class ReasonSchema(RequestSchema):
    reason = text(500, metadata={"description": "Why the change is made (kept in the audit log)."})


class OptionalReasonSchema(RequestSchema):
    reason = text(500, required=False)


class EmptySchema(RequestSchema):
    """A body that must be empty (``{}`` or absent)."""
