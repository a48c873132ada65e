"""Pieces shared by the resource schemas.

Validation messages say what to send, not which library refused it: every
field of a ``RequestSchema`` (bodies and query strings, nested schemas and list
items included) has its library messages replaced when the schema binds it,
once, here — "Needs a date as YYYY-MM-DD, e.g. 2026-11-26." rather than "Not a
valid date.". A message a schema sets itself (``error_messages=`` or a
validator's ``error=``) is kept.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

#: The examples the messages show (any valid value would do; these read well).
EXAMPLE_DATETIME = "2026-11-26T10:00:00Z"
EXAMPLE_DATE = "2026-11-26"
EXAMPLE_UUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

#: Keys under which marshmallow's fields report a value of the wrong type or shape.
_TYPE_ERROR_KEYS = ("invalid", "invalid_uuid", "invalid_awareness", "type")


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` only: ``"yes"``, ``1`` or ``"true"`` are refused.

    An attestation is a deliberate act; a truthy string must not count as one.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


#: What a value of each field type looks like, for "Needs <hint>." and "Required: send <hint>.".
#: Looked up along the field class's MRO, so the most specific type wins.
_HINTS: dict[type[fields.Field], str] = {
    fields.AwareDateTime: f"a date and time with a UTC offset, e.g. {EXAMPLE_DATETIME}",
    fields.NaiveDateTime: "a date and time without an offset, e.g. 2026-11-26T10:00:00",
    fields.DateTime: f"a date and time, e.g. {EXAMPLE_DATETIME}",
    fields.Date: f"a date as YYYY-MM-DD, e.g. {EXAMPLE_DATE}",
    fields.Time: "a time as HH:MM:SS, e.g. 10:00:00",
    fields.UUID: f"a UUID, e.g. {EXAMPLE_UUID}",
    fields.Integer: "a whole number (a JSON number, not a string), e.g. 28",
    fields.Number: "a number (a JSON number, not a string), e.g. 2.5",
    StrictBoolean: "true or false (a JSON boolean, not a string or a number)",
    fields.Boolean: "true or false",
    fields.Email: "an email address, e.g. name@example.org",
    fields.Url: "a URL, e.g. https://example.org/rems-events",
    fields.String: "text (a JSON string)",
    fields.Nested: "a JSON object",
    fields.List: "a JSON array",
    fields.Tuple: "a JSON array",
    fields.Mapping: "a JSON object",
}


def _library_defaults(field: fields.Field) -> dict[str, Any]:
    """The messages marshmallow gives ``field`` when its schema sets none."""
    messages: dict[str, Any] = {}
    for cls in reversed(type(field).__mro__):
        messages.update(getattr(cls, "default_error_messages", {}))
    return messages


def _hint(field: fields.Field) -> str:
    """What ``field`` accepts, in words (no format braces)."""
    if isinstance(field, fields.Enum):
        return f"one of: {field.choices_text}"
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return f"one of: {validator.choices_text}"
    hint = next((_HINTS[cls] for cls in type(field).__mro__ if cls in _HINTS), "a value")
    if isinstance(field, fields.List):
        hint = f"{hint}, each item {_hint(field.inner)}"
    return hint


def _escape(text: str) -> str:
    """``text`` as a literal inside a message marshmallow passes through ``str.format``."""
    return text.replace("{", "{{").replace("}", "}}")


def _unit(field: fields.Field) -> str:
    return "items" if isinstance(field, (fields.List, fields.Tuple, fields.Mapping)) else "characters"


def _explain_validator(field: fields.Field, validator: Any, defaults: dict[str, Any], needs: str) -> Any:
    """A copy of ``validator`` worded for the caller; the validator itself when it has its own wording."""
    worded: Any
    if isinstance(validator, validate.Length) and validator.error is None:
        unit = _unit(field)
        worded = copy.copy(validator)
        worded.message_min = f"Needs at least {{min}} {unit}."
        worded.message_max = f"Needs at most {{max}} {unit}."
        worded.message_all = f"Needs {{min}} to {{max}} {unit}."
        worded.message_equal = f"Needs exactly {{equal}} {unit}."
        return worded
    if (
        isinstance(validator, validate.Range)
        and validator.error is None
        and validator.min_inclusive
        and validator.max_inclusive
    ):
        worded = copy.copy(validator)
        worded.message_min = "Needs a value of at least {min}."
        worded.message_max = "Needs a value of at most {max}."
        worded.message_all = "Needs a value from {min} to {max}."
        return worded
    if isinstance(validator, validate.OneOf) and validator.error == validate.OneOf.default_message:
        worded = copy.copy(validator)
        worded.error = "Needs one of: {choices}."
        return worded
    if isinstance(validator, (validate.Email, validate.URL)) and validator.error == defaults.get("invalid"):
        worded = copy.copy(validator)
        worded.error = needs  # Email and Url fields validate through these, with the field's message
        return worded
    return validator


#: A cursor is URL-safe base64 (``services.paging``); documented as the parameter's pattern.
CURSOR_CHARACTERS = validate.Regexp(r"^[A-Za-z0-9_-]+$", error="Invalid cursor: send a next_cursor as given.")


def within_calendar(value: Any) -> None:
    """Refuse an instant that has no UTC equivalent (``0001-01-01T00:00:00+05:00`` falls
    before year 1 in UTC, ``9999-12-31T23:59:59-05:00`` after 9999): everything is stored in UTC."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Outside the calendar in UTC (years 1 to 9999).") from None


def explain(field: fields.Field) -> None:
    """Replace ``field``'s library messages (and its validators' and list items') with ones saying what to send.

    ``field`` is the schema instance's own copy: marshmallow copies declared fields
    per schema instance, but shallowly, so the message dict and validator list are
    rebound here, never changed in place.
    """
    defaults = _library_defaults(field)
    hint = _escape(_hint(field))
    needs = f"Needs {hint}."
    worded = {"required": f"Required: send {hint}.", "null": f"Must not be null: send {hint}."}
    worded.update(dict.fromkeys(_TYPE_ERROR_KEYS, needs))
    if isinstance(field, fields.Enum):
        worded["unknown"] = "Needs one of: {choices}."
    messages = dict(field.error_messages)
    for key, message in worded.items():
        if key in messages and messages[key] == defaults.get(key):
            messages[key] = message
    field.error_messages = messages
    field.validators = [_explain_validator(field, v, defaults, needs) for v in field.validators]
    if not isinstance(field, (fields.Nested, fields.List, fields.Dict)):
        field.validators.append(within_calendar)
    if isinstance(field, fields.List):
        explain(field.inner)
    if isinstance(field, fields.Dict) and field.value_field is not None:
        explain(field.value_field)


class RequestSchema(Schema):
    """Base of every request body and query string: closed, unknown keys are refused.

    Each field's messages say what to send (``explain``)."""

    class Meta:
        unknown = RAISE

    error_messages = {
        "unknown": "Unknown field: this request does not accept it "
        "(server-owned fields such as id and status are never sent).",
        "type": "Needs a JSON object.",
    }

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        explain(field_obj)


def not_blank(value: str) -> None:
    """Refuse text of white space only (leading or trailing spaces around words are fine)."""
    if not value.strip():
        raise ValidationError("Must not be blank.")


def text(max_length: int, required: bool = True, **kwargs: Any) -> fields.String:
    """A non-blank string of at most ``max_length`` characters."""
    return fields.String(
        required=required,
        validate=[validate.Length(min=1, max=max_length), not_blank],
        **kwargs,
    )


def must_be_true() -> fields.Boolean:
    return StrictBoolean(required=True, validate=validate.Equal(True, error="Must be true."))


class ReasonSchema(RequestSchema):
    reason = text(500, metadata={"description": "Why the change is made (kept in the audit log)."})


class OptionalReasonSchema(RequestSchema):
    reason = text(500, required=False)


class EmptySchema(RequestSchema):
    """A body that must be empty (``{}`` or absent)."""
