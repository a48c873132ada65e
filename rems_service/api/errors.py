"""The error format of API.md, for every error the service returns.

``{"code", "status", "message", "errors": {"<field>": ["..."]}}``; nested
field errors are flattened to dotted names (``attestations.completed_education``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from flask import Flask, Request, Response, jsonify, request
from flask_limiter import RateLimitExceeded
from flask_smorest import Api, Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy.exc import DBAPIError, OperationalError
from webargs import core
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from rems_service import ratelimit
from rems_service.services.errors import ServiceError
from rems_service.services.versions import NotInForce

log = logging.getLogger(__name__)

#: webargs puts errors under the request location; these are stripped.
_LOCATIONS = ("json", "query", "querystring", "view_args", "headers", "form")


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into ``{"a.b": ["msg", ...]}``."""
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "body"
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    if isinstance(errors, (list, tuple)):
        if all(isinstance(e, str) for e in errors):
            return {prefix or "body": list(errors)}
        flat = {}
        for value in errors:
            for field, messages in flatten_errors(value, prefix).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    return {prefix or "body": [str(errors)]}


def _strip_location(errors: Any) -> Any:
    if isinstance(errors, dict) and errors and set(errors) <= set(_LOCATIONS):
        merged: dict[str, Any] = {}
        for location, value in errors.items():
            if isinstance(value, dict):
                merged.update(value)
            else:
                merged["body" if location == "json" else location] = value
        return merged
    return errors


def _summary(errors: dict[str, list[str]]) -> str:
    parts = [f"{field}: {' '.join(messages)}" for field, messages in errors.items()]
    return "; ".join(parts)


def error_response(
    code: int, message: str | None = None, errors: dict[str, list[str]] | None = None, headers: Any = None
) -> tuple[Response, int, Any]:
    status = HTTPStatus(code)
    payload: dict[str, Any] = {"code": code, "status": status.phrase, "message": message or status.description}
    if errors:
        payload["errors"] = errors
    return jsonify(payload), code, headers or {}


class ErrorSchema(Schema):
    """The error body of every error response (documentation only; ``error_response`` writes it)."""

    code = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    status = fields.String(required=True, metadata={"description": "The HTTP reason phrase."})
    message = fields.String(required=True, metadata={"description": "What went wrong, and what to do."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "Per field (dotted for nested fields, e.g. `attestations.completed_education`; "
            "`body` for the body as a whole; a header's name for a header): what to send instead."
        },
    )


JSON = "application/json"


def _needs_body(schema: Schema) -> bool:
    return any(field.required for field in schema.fields.values())


def load_json_body(request: Request, schema: Schema) -> Any:
    """The JSON body of an operation that takes one (webargs' "json" location).

    No body at all is an empty one when the schema needs no field (``EmptySchema``,
    optional reasons: ``POST .../complete`` may be sent bare); otherwise, and for any
    body not sent as JSON, 415 naming ``application/json``. A body sent as JSON that
    does not parse is 400. Either way nothing was read, so nothing was changed.
    """
    body = request.get_data(cache=True)
    if not body.strip():
        if not _needs_body(schema):
            return core.missing
        if request.is_json:
            abort(400, message="The body is empty: this operation takes a JSON object.", errors={"body": ["Empty."]})
        _unsupported(request)
    if not request.is_json:
        _unsupported(request)
    try:
        parsed = json.loads(body.decode("utf-8"), object_pairs_hook=_object_without_duplicates)
    except UnicodeDecodeError:
        detail = "not UTF-8 text"
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    except _DuplicateKey as exc:
        abort(
            400,
            message=f"The body names {exc.key!r} twice in one object: send each member once.",
            errors={exc.key or "body": ["Given more than once in the same object."]},
        )
    except RecursionError:
        detail = f"nested deeper than {MAX_DEPTH} levels"
    else:
        refuse_unsafe_text(_walk(parsed))
        return parsed
    abort(400, message=f"The body is not valid JSON ({detail}).", errors={"body": [f"Not valid JSON: {detail}."]})


#: How deeply a request body may nest objects and arrays (the deepest request schema uses 3).
MAX_DEPTH = 32

#: C0 controls but tab, newline and carriage return; DEL; and UTF-16 surrogates, which
#: only appear in a decoded string as unpaired halves (``"\ud800"``): no database
#: stores them (PostgreSQL refuses NUL; a lone surrogate cannot be encoded as UTF-8).
UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a member named twice (which ``json`` would silently resolve to the last)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _walk(value: Any) -> Iterator[tuple[str, str]]:
    """Each string (member names included) of a parsed JSON document with its dotted field name;
    iterative, and aborting with 400 past ``MAX_DEPTH`` levels."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, str):
            yield path or "body", item
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth >= MAX_DEPTH:
            abort(
                400,
                message=f"The body nests deeper than {MAX_DEPTH} levels.",
                errors={"body": [f"Nested deeper than {MAX_DEPTH} levels."]},
            )
        members = item.items() if isinstance(item, dict) else enumerate(item)
        for key, member in members:
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield name, key
            stack.append((name, member, depth + 1))


def _printable(name: str) -> str:
    """A field name fit for an error message (its unsafe characters as ``\\uXXXX``)."""
    return UNSAFE_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", name)


def refuse_unsafe_text(strings: Iterator[tuple[str, str]] | Any) -> None:
    """422 naming each field whose text holds a control character (NUL included) or an
    unpaired surrogate: nothing downstream (databases, logs, CSV) can hold them safely."""
    bad: dict[str, list[str]] = {}
    for name, text in strings:
        found = UNSAFE_TEXT.search(text)
        if found:
            bad[_printable(name)] = [
                f"Contains the control character or unpaired surrogate U+{ord(found.group()):04X}: "
                "send printable text (tab and line breaks are allowed)."
            ]
    if bad:
        abort(422, errors=bad)


def load_query(request: Request, schema: Schema) -> Any:
    """The query string (webargs' "query" location), after refusing unsafe text in any name or value."""
    refuse_unsafe_text((item for key, value in request.args.items(multi=True) for item in ((key, key), (key, value))))
    return Blueprint.ARGUMENTS_PARSER.load_querystring(request, schema)


def refuse_unsafe_path() -> None:
    """A blueprint ``before_request``: unsafe text in a path segment (``/authorizations/A%00B``) is a 422."""
    refuse_unsafe_text((name, value) for name, value in (request.view_args or {}).items() if isinstance(value, str))


def _unsupported(request: Request) -> None:
    sent = request.mimetype
    abort(
        415,
        message=f"The body must be JSON: send it with Content-Type: {JSON}.",
        errors={"Content-Type": [f"Expected {JSON}; got {sent}." if sent else f"Missing; expected {JSON}."]},
    )


class RemsApi(Api):
    """flask-smorest's Api with API.md's error body."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> tuple[Response, int, Any]:
        data = getattr(error, "data", None) or {}
        raw = data.get("errors", data.get("messages"))
        errors = flatten_errors(_strip_location(raw)) if raw else None
        message = data.get("message")
        if message is None:
            if error.code == 422 and errors:
                message = "Validation failed: " + _summary(errors)
            elif error.code == 400 and errors:
                message = "Malformed request: " + _summary(errors)
            else:
                message = error.description
        headers = dict(data.get("headers") or {})
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))  # RFC 9110 15.5.6: a 405 names them
        return error_response(error.code or 500, message, errors, headers)


#: Responses a shared cache may keep: the public API description (no PHI, no caller data).
CACHEABLE_PATHS = ("/api/v1/openapi.json", "/api/v1/docs")


def _protect_response(response: Response) -> Response:
    """Every answer may carry PHI or a caller's data (tokens, secrets): no cache keeps it, and
    no browser guesses its type."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if not request.path.startswith(CACHEABLE_PATHS):
        response.headers["Cache-Control"] = "no-store"
    return response


def too_many_requests(exc: RateLimitExceeded) -> tuple[Response, int, Any]:
    """The only place a 429 is made (``rems_service.ratelimit``): the API's error body;
    ``ratelimit``'s after-request hook adds ``Retry-After`` (seconds) and the X-RateLimit headers."""
    return error_response(
        429,
        ratelimit.refusal(exc),  # logged and counted (rems_rate_limit_refusals)
        {"rate_limit": [f"At most {exc.limit.limit}."]},
    )


def init_app(app: Flask) -> None:
    app.after_request(_protect_response)
    app.register_error_handler(RateLimitExceeded, too_many_requests)

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> tuple[Response, int, Any]:
        if isinstance(exc, NotInForce):
            if request.headers.get("X-Rems-Now"):  # the caller chose a time before the program
                return error_response(422, f"X-Rems-Now: {exc.message}; nothing was decided.", exc.field_errors)
            return error_response(exc.status, exc.message)
        return error_response(exc.status, exc.message, exc.field_errors or None)

    @app.errorhandler(OverflowError)
    def _outside_the_calendar(exc: OverflowError) -> tuple[Response, int, Any]:
        # A date computed from the request (a window from a far-future X-Rems-Now or body
        # date) passed year 9999. The unit of work rolled back: nothing was decided or changed.
        field = "X-Rems-Now" if request.headers.get("X-Rems-Now") else "body"
        log.warning("date outside the calendar", extra={"error": type(exc).__name__})
        return error_response(
            422,
            "A date this request needs falls outside the calendar (years 1 to 9999); nothing was decided or changed.",
            {field: ["A date computed from it falls outside years 1 to 9999."]},
        )

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> tuple[Response, int, Any]:
        # Fail closed: nothing was decided or changed; say so and let the caller retry.
        log.error("database unavailable", extra={"error": type(exc).__name__})
        return error_response(503, "The database is unavailable; nothing was changed. Retry later.")

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> tuple[Response, int, Any]:
        if exc.connection_invalidated:
            log.error("database connection lost", extra={"error": type(exc).__name__})
            return error_response(503, "The database connection was lost; nothing was changed. Retry later.")
        # Never the exception's text: a driver's message can quote a row's values (a unique
        # violation's DETAIL, an invalid value's echo), and values here can be PHI. The
        # statement's parameters are hidden by the engine (``hide_parameters``) as well.
        orig = exc.orig
        log.error(
            "database error",
            extra={"error": type(orig or exc).__name__, "sqlstate": getattr(orig, "sqlstate", None)},
        )
        return error_response(500, "Internal error; nothing was changed.")
