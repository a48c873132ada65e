"""The auditor's pages (UI.md, "Auditor"): the filtered log, an entry, chain
verification, CSV/NDJSON export and the charts.

Each view calls the service function the API's audit views call
(``audit_log.page``, ``entry``, ``verify``, ``record_export`` and ``stream``), with
the filters validated by the API's own query schema, so the portal shows and
exports exactly what the API does, and every read is itself an audit entry.
The export writes its rows with the API's own CSV and NDJSON writers.
"""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Response, render_template, request
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from rems_service.api.audit import csv_chunks, ndjson_chunks, yielding_to_decisions
from rems_service.context import ctx
from rems_service.schemas.audit import AuditListQuerySchema
from rems_service.services import audit_log, directory
from rems_service.services.audit_log import AUDIT_ACTIONS
from workflows.actors import UserRole
from workflows.audit import OUTCOME_APPROVED, OUTCOME_COMPLETED, OUTCOME_DENIED
from workflows.rules import Code

from . import charts, page_blueprint
from .forms import load

bp = page_blueprint("portal_audit", __name__, url_prefix="/audit", roles=[UserRole.AUDITOR])

#: Entries per page of the portal's table.
PAGE_SIZE = 50
#: The query parameters the filters are carried in (links, export, next page).
FILTER_PARAMS = (
    "action",
    "outcome",
    "reason",
    "pharmacy_id",
    "prescriber_id",
    "rems_patient_id",
    "since",
    "until",
    "include_reads",
)


class AuditFilterForm(FlaskForm):
    """The filters of UI.md with their exact labels; read from the query string (no CSRF:
    a search changes nothing). ``To`` is inclusive: the API's exclusive ``until`` is the day after."""

    class Meta:
        csrf = False

    action = SelectField(
        "Action", choices=[SelectChoice("", "Any action"), *(SelectChoice(a, a) for a in AUDIT_ACTIONS)], default=""
    )
    outcome = SelectField(
        "Outcome",
        choices=[
            SelectChoice("", "Any outcome"),
            *(SelectChoice(o, o.capitalize()) for o in (OUTCOME_APPROVED, OUTCOME_DENIED, OUTCOME_COMPLETED)),
        ],
        default="",
    )
    reason = SelectField(
        "Reason code",
        choices=[SelectChoice("", "Any reason"), *(SelectChoice(c.value, c.value) for c in Code)],
        default="",
    )
    pharmacy_id = SelectField("Pharmacy", choices=[SelectChoice("", "Any pharmacy")], default="")
    prescriber_id = SelectField("Prescriber", choices=[SelectChoice("", "Any prescriber")], default="")
    rems_patient_id = StringField("REMS patient ID", validators=[Optional(), Length(max=40)])
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])
    include_reads = BooleanField("Include auditors' reads")

    def validate_until(self, field: DateField) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("To must be on or after From.")

    def api_args(self) -> dict[str, Any]:
        """The filters as the API's query takes them (``until`` exclusive)."""
        args: dict[str, Any] = {}
        for name in ("action", "outcome", "reason", "pharmacy_id", "prescriber_id"):
            if getattr(self, name).data:
                args[name] = getattr(self, name).data
        if (self.rems_patient_id.data or "").strip():
            args["rems_patient_id"] = self.rems_patient_id.data.strip()
        if self.since.data:
            args["since"] = self.since.data.isoformat()
        if self.until.data:
            args["until"] = (self.until.data + timedelta(days=1)).isoformat()
        if self.include_reads.data:
            args["include_reads"] = "true"
        return args

    def query(self) -> dict[str, str]:
        """The filters as this page's query string carries them (``To`` as typed)."""
        out: dict[str, str] = {}
        for name in FILTER_PARAMS:
            value = getattr(self, name).data
            if isinstance(value, date):
                out[name] = value.isoformat()
            elif value is True:
                out[name] = "y"
            elif isinstance(value, str) and value.strip():
                out[name] = value.strip()
        return out


def _filter_form() -> AuditFilterForm:
    c = ctx()
    form = AuditFilterForm(formdata=request.args)
    choices = directory.filter_choices(c.uow(), c.actor)
    form.pharmacy_id.choices = [
        SelectChoice("", "Any pharmacy"),
        *(SelectChoice(str(p.id), f"{p.name} · NCPDP {p.ncpdp_id}") for p in choices.pharmacies),
    ]
    form.prescriber_id.choices = [
        SelectChoice("", "Any prescriber"),
        *(SelectChoice(str(p.id), f"{p.last_name}, {p.first_name} · NPI {p.npi}") for p in choices.prescribers),
    ]
    return form


def _validated(form: AuditFilterForm) -> dict[str, Any] | None:
    """The API's validated query for the form's filters, or None (errors are on the form)."""
    if not form.validate():
        return None
    args = load(AuditListQuerySchema(), form.api_args(), form)
    return None if args is None else dict(args)


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


@bp.route("", methods=["GET"])
def home() -> tuple[str, int]:
    """Heading "Audit log": the filters, a page of entries newest first, the charts."""
    c = ctx()
    form = _filter_form()
    args = _validated(form)
    if args is None:
        return render_template("audit/home.html", page_title="Audit log", form=form, rows=None), 422
    f = audit_log.audit_filter(c.program, args)
    cursor = request.args.get("cursor") or None
    rows, next_cursor = audit_log.page(c.uow(), c.actor, c.now, f, PAGE_SIZE, cursor)
    chart_data = audit_log.charts(c.uow(), c.actor, c.now, c.program, f)
    query = form.query()
    return render_template(
        "audit/home.html",
        page_title="Audit log",
        form=form,
        rows=rows,
        references=lambda row: audit_log.references(row.subject or {}, row.details or {}),
        query=query,
        paged=cursor is not None,
        next_cursor=next_cursor,
        export_csv=f"/audit/export.csv?{urlencode(query)}",
        export_ndjson=f"/audit/export.ndjson?{urlencode(query)}",
        chart=chart_data,
        outcomes=charts.outcomes_of(chart_data),
        per_day_uri=_data_uri(charts.decisions_per_day_svg(chart_data)),
        per_day_text=charts.decisions_per_day_text(chart_data),
        reasons_uri=_data_uri(charts.denial_reasons_svg(chart_data)),
        reasons_text=charts.denial_reasons_text(chart_data),
    ), 200


@bp.route("/entries/<int:seq>", methods=["GET"])
def entry(seq: int) -> str:
    """One entry: every field, its hashes and the digest of the decision's snapshot."""
    c = ctx()
    row = audit_log.entry(c.uow(), c.actor, c.now, seq)
    return render_template(
        "audit/entry.html",
        page_title=f"Audit entry {row.seq}",
        row=row,
        references=audit_log.references(row.subject or {}, row.details or {}),
        pretty=lambda value: json.dumps(value, indent=2, sort_keys=True, default=str),
    )


@bp.route("/verify", methods=["POST"])
def verify() -> str:
    """Verify the whole chain (as ``GET /api/v1/audit/verify``): intact, or the first invalid seq."""
    c = ctx()
    result = audit_log.verify(c.uow(), c.actor, c.now)
    return render_template("audit/verify.html", page_title="Chain verification", result=result)


@bp.route("/export.<any(csv, ndjson):fmt>", methods=["GET"])
def export(fmt: str) -> Response | tuple[str, int]:
    """Every entry matching the filters, oldest first, as the API exports them."""
    c = ctx()
    form = _filter_form()
    args = _validated(form)
    if args is None:
        return render_template("audit/home.html", page_title="Audit log", form=form, rows=None), 422
    f = audit_log.audit_filter(c.program, args)
    through = audit_log.record_export(c.uow(), c.actor, c.now, f, fmt)
    rows = audit_log.stream(c.uow, f, through)
    body, mimetype = (
        (ndjson_chunks(rows), "application/x-ndjson") if fmt == "ndjson" else (csv_chunks(rows), "text/csv")
    )
    response = Response(yielding_to_decisions(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit-through-{through}.{fmt}"'
    return response
