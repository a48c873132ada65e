"""The audit log for auditors and program staff (API.md, Audit).

Every read here is itself recorded in the log.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Response, stream_with_context
from flask_smorest import Blueprint
from marshmallow import RAISE

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.db.models import AuditEntry
from rems_service.schemas.audit import (
    AuditEntrySchema,
    AuditExportQuerySchema,
    AuditListQuerySchema,
    AuditPageSchema,
    AuditVerifyQuerySchema,
    AuditVerifySchema,
)
from rems_service.services import audit_log
from workflows.actors import UserRole

blp = protect(Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="The tamper-evident audit log"))

AUDITORS = (UserRole.AUDITOR, UserRole.ADMIN)

#: The entry's columns in export order (CSV header); JSON-valued ones are written as canonical JSON text.
CSV_COLUMNS = (
    "seq",
    "recorded_at",
    "effective_at",
    "actor_user_id",
    "actor_role",
    "action",
    "outcome",
    "reasons",
    "program_version",
    "subject",
    "details",
    "inputs_digest",
    "prev_hash",
    "hash",
)


def item(row: AuditEntry) -> dict[str, Any]:
    """One entry in API.md's shape (plus ``details``)."""
    return {
        "seq": row.seq,
        "recorded_at": row.recorded_at,
        "effective_at": row.effective_at,
        "actor": {"user_id": row.actor_user_id, "role": row.actor_role},
        "action": row.action,
        "outcome": row.outcome,
        "reasons": row.reasons,
        "program_version": row.program_version,
        "subject": row.subject,
        "details": row.details,
        "inputs_digest": row.inputs_digest,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _filter(args: dict[str, Any]) -> audit_log.AuditFilter:
    return audit_log.AuditFilter(**{k: args.get(k) for k in audit_log.AuditFilter.__dataclass_fields__})


@blp.route("/events", methods=["GET"])
@roles(*AUDITORS)
@blp.arguments(AuditListQuerySchema, location="query", unknown=RAISE)
@blp.response(200, AuditPageSchema)
def events(args: dict[str, Any]) -> dict[str, Any]:
    """Entries matching every given filter, newest first; `next_cursor` fetches the next page."""
    c = ctx()
    rows, next_cursor = audit_log.page(c.uow(), c.actor, c.now, _filter(args), args["limit"], args.get("cursor"))
    return {"items": [item(r) for r in rows], "next_cursor": next_cursor}


@blp.route("/events/<int:seq>", methods=["GET"])
@roles(*AUDITORS)
@blp.response(200, AuditEntrySchema)
def event(seq: int) -> dict[str, Any]:
    """One entry."""
    c = ctx()
    return item(audit_log.entry(c.uow(), c.actor, c.now, seq))


@blp.route("/verify", methods=["GET"])
@roles(*AUDITORS)
@blp.arguments(AuditVerifyQuerySchema, location="query", unknown=RAISE)
@blp.response(200, AuditVerifySchema)
def verify(args: dict[str, Any]) -> dict[str, Any]:
    """Check the chain (whole, or from the last checkpoint) and name the first invalid entry."""
    c = ctx()
    anchor = audit_log.parse_anchor(args["anchor"]) if args.get("anchor") else None
    return audit_log.verify(c.uow(), c.actor, c.now, incremental=args["incremental"], anchor=anchor).as_dict()


@blp.route("/export", methods=["GET"])
@roles(*AUDITORS)
@blp.arguments(AuditExportQuerySchema, location="query", unknown=RAISE)
@blp.response(200, content_type="text/csv")
@blp.alt_response(200, content_type="application/x-ndjson", description="format=ndjson")
def export(args: dict[str, Any]) -> Response:
    """Every matching entry, oldest first, streamed (constant memory) as CSV or NDJSON."""
    c = ctx()
    f = _filter(args)
    through = audit_log.record_export(c.uow(), c.actor, c.now, f, args["format"])
    rows = audit_log.stream(c.uow, f, through)
    if args["format"] == "ndjson":
        body, mimetype = ndjson_chunks(rows), "application/x-ndjson"
    else:
        body, mimetype = csv_chunks(rows), "text/csv"
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit-through-{through}.{args["format"]}"'
    return response


def _plain(value: Any) -> Any:
    """What the API's schema renders: ISO instants, UUIDs as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _flat(row: AuditEntry) -> dict[str, Any]:
    return {c: _plain(getattr(row, c)) for c in CSV_COLUMNS}


def ndjson_chunks(rows: Iterator[AuditEntry]) -> Iterator[str]:
    for row in rows:
        flat = _flat(row)
        line = {k: v for k, v in flat.items() if k not in ("actor_user_id", "actor_role")}
        line["actor"] = {"user_id": flat["actor_user_id"], "role": flat["actor_role"]}
        yield json.dumps(line, sort_keys=True) + "\n"


def csv_chunks(rows: Iterator[AuditEntry]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for n, row in enumerate(rows, 1):
        flat = _flat(row)
        writer.writerow(
            [
                json.dumps(flat[c], sort_keys=True, separators=(",", ":"))
                if isinstance(flat[c], (dict, list))
                else ("" if flat[c] is None else flat[c])
                for c in CSV_COLUMNS
            ]
        )
        if n % 200 == 0:
            yield flush()
    yield flush()
