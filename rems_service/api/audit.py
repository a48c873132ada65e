"""The audit log for auditors and program staff (API.md, Audit).

Every read here is itself recorded in the log.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from flask import Response
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

#: The CSV export's columns: one row per entry, flat values a spreadsheet can filter (lists
#: joined with ``CSV_JOIN``; the references are every one the entry names, as the filters
#: match them). NDJSON keeps the full structure.
CSV_COLUMNS = (
    "seq",
    "recorded_at",
    "effective_at",
    "actor_user_id",
    "actor_role",
    "action",
    "outcome",
    "reason_codes",
    "rules",
    "rems_patient_id",
    "authorization_number",
    "confirmation_number",
    "pharmacy_id",
    "prescriber_id",
    "program_version",
    "inputs_digest",
    "prev_hash",
    "hash",
)
CSV_JOIN = ";"
#: The entry's columns NDJSON writes (besides ``actor``).
NDJSON_COLUMNS = (
    "seq",
    "recorded_at",
    "effective_at",
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


@blp.route("/events", methods=["GET"])
@roles(*AUDITORS)
@blp.arguments(AuditListQuerySchema, location="query", unknown=RAISE)
@blp.response(200, AuditPageSchema)
def events(args: dict[str, Any]) -> dict[str, Any]:
    """Entries matching every given filter, newest first; `next_cursor` fetches the next page.

    The auditors' own reads (`audit.read`) are left out unless `include_reads=true`."""
    c = ctx()
    f = audit_log.audit_filter(c.program, args)
    rows, next_cursor = audit_log.page(c.uow(), c.actor, c.now, f, args["limit"], args.get("cursor"))
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
    """Every matching entry, oldest first, streamed (constant memory): CSV with flat columns
    (one row per entry, reason codes and rule IDs joined with `;`) or NDJSON with the full
    structure. The same filters as the listing (reads left out unless `include_reads=true`)."""
    c = ctx()
    f = audit_log.audit_filter(c.program, args)
    through = audit_log.record_export(c.uow(), c.actor, c.now, f, args["format"])
    rows = audit_log.stream(c.uow, f, through)
    if args["format"] == "ndjson":
        body, mimetype = ndjson_chunks(rows), "application/x-ndjson"
    else:
        body, mimetype = csv_chunks(rows), "text/csv"
    response = Response(yielding_to_decisions(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit-through-{through}.{args["format"]}"'
    return response


def _plain(value: Any) -> Any:
    """What the API's schema renders: ISO instants, UUIDs as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def ndjson_chunks(rows: Iterator[AuditEntry]) -> Iterator[str]:
    for row in rows:
        line = {c: _plain(getattr(row, c)) for c in NDJSON_COLUMNS}
        line["actor"] = {"user_id": _plain(row.actor_user_id), "role": row.actor_role}
        yield json.dumps(line, sort_keys=True) + "\n"


def _joined(values: Iterable[Any]) -> str:
    """Distinct values in first-seen order, joined."""
    return CSV_JOIN.join(dict.fromkeys(str(v) for v in values if v))


def csv_row(row: AuditEntry) -> list[str]:
    """One entry as CSV_COLUMNS' flat values."""
    subject, reasons = row.subject or {}, row.reasons or []
    refs = audit_log.references(subject, row.details or {})
    flat = {
        "seq": row.seq,
        "recorded_at": _plain(row.recorded_at),
        "effective_at": _plain(row.effective_at),
        "actor_user_id": _plain(row.actor_user_id),
        "actor_role": row.actor_role,
        "action": row.action,
        "outcome": row.outcome,
        "reason_codes": _joined(r.get("code") for r in reasons),
        "rules": _joined(r.get("rule") for r in reasons),
        "rems_patient_id": _joined(refs.get("rems_patient_id", ())),
        "authorization_number": _joined(refs.get("authorization_number", ())),
        "confirmation_number": _joined(refs.get("confirmation_number", ())),
        "pharmacy_id": _plain(row.pharmacy_id),
        "prescriber_id": _plain(row.prescriber_id),
        "program_version": row.program_version,
        "inputs_digest": row.inputs_digest,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }
    return ["" if flat[c] is None else str(flat[c]) for c in CSV_COLUMNS]


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
        writer.writerow(csv_row(row))
        if n % 200 == 0:
            yield flush()
    yield flush()


#: How far below the decisions an export's thread is scheduled (``nice`` increment): the
#: operating system gives it the cores the decisions leave (issue 16: a decision's p99 while
#: a full export streams).
EXPORT_NICENESS = 19
_DONE = object()


def yielding_to_decisions(chunks: Iterator[str], depth: int = 4) -> Iterator[str]:
    """``chunks`` made on a thread of their own at a lower scheduling priority: the request's
    thread only sends what that thread made (a bounded queue: memory stays flat). The
    export reads the database in units of work of its own, so it needs no request context;
    a client that goes away stops the thread at its next chunk."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        with contextlib.suppress(AttributeError, OSError):  # not Linux: the same priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), EXPORT_NICENESS)
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the request's thread, raised there
            put(exc)

    producer = threading.Thread(target=produce, name="audit-export", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
