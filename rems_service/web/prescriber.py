"""The prescriber's pages (UI.md, "Prescriber"): patients, enrollment, tests, surveys, authorizations.

Each view calls the service function the API's views call (``patients.enroll``,
``record_test``, ``record_survey``, ``get``, ``listing``; ``authorizations.request``,
``void``, ``listing``), with the values checked by the API's own request schemas,
so a decision made here is the same recorded Decision, audit entry and replay.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from rems_service.context import ctx
from rems_service.schemas.decisions import AuthorizationCreateSchema
from rems_service.schemas.patients import PatientEnrollSchema, PregnancyTestCreateSchema, SurveyCreateSchema
from rems_service.services import authorizations, patients
from rems_service.services.errors import Conflict, Invalid
from workflows.actors import UserRole
from workflows.authorizations import OPEN_STATUSES
from workflows.surveys import questions_for

from . import page_blueprint
from .decisions import new_request_key, request_key, shown
from .forms import (
    RISK_LABELS,
    AuthorizationRequestForm,
    EnrollForm,
    PregnancyTestForm,
    load,
    show_errors,
    survey_form,
)

bp = page_blueprint("prescriber", __name__, url_prefix="/prescriber", roles=[UserRole.PRESCRIBER])

PAGE_SIZE = 50


def _utc(value: datetime | None) -> str | None:
    """A ``datetime-local`` value (no offset) read as UTC, as ISO 8601 with the offset."""
    return None if value is None else value.replace(tzinfo=UTC).isoformat()


def _due(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "—"
    return "due now" if value <= now else value.strftime("%Y-%m-%d")


@bp.route("", methods=["GET"])
def home() -> Any:
    """**Patients**: the prescriber's patients with testing, survey and latest authorization."""
    c = ctx()
    q = (request.args.get("q") or "").strip() or None
    cursor = request.args.get("cursor") or None
    page = patients.listing(c.uow(), c.actor, c.now, c.program, limit=PAGE_SIZE, cursor=cursor, q=q)
    latest: dict[uuid.UUID, authorizations.AuthorizationItem] = {}
    for item in authorizations.listing(c.uow(), c.actor, c.now, limit=100).items:
        latest.setdefault(item.authorization.patient_id, item)
    return render_template(
        "prescriber/home.html",
        page_title="Patients",
        rows=page.items,
        next_cursor=page.next_cursor,
        q=q or "",
        latest=latest,
        now=c.now,
        due=_due,
        risk_labels=RISK_LABELS,
    )


@bp.route("/patients/new", methods=["GET", "POST"])
def enroll() -> Any:
    """**Enroll patient**: the enrollment form; **Enroll** records it (R-PAT-1)."""
    form = EnrollForm()
    if request.method == "POST" and form.validate():
        args = load(PatientEnrollSchema(), form.api_body(), form, {"fnrp_reason": "fnrp_reason"})
        if args is not None:
            c = ctx()
            try:
                row = patients.enroll(c.uow(), c.actor, c.now, c.program, **args)
            except Invalid as exc:
                show_errors(form, exc.field_errors)
                form.form_errors.append(exc.message)
            except Conflict as exc:
                form.form_errors.append(exc.message)
            else:
                flash(f"{row.first_name} {row.last_name} enrolled: REMS patient ID {row.rems_patient_id}.", "success")
                return redirect(url_for("prescriber.patient", patient_id=row.id))
    status = 422 if request.method == "POST" else 200
    return render_template("prescriber/enroll.html", page_title="Enroll patient", form=form), status


def _patient_page(
    patient_id: uuid.UUID,
    *,
    test_form: PregnancyTestForm | None = None,
    survey: Any = None,
    auth_form: AuthorizationRequestForm | None = None,
    result: Any = None,
    status: int = 200,
) -> tuple[str, int]:
    c = ctx()
    view = patients.get(c.uow(), c.actor, c.now, c.program, patient_id)
    questions = questions_for(view.patient.risk_category)
    minute = c.now.replace(second=0, microsecond=0, tzinfo=None)
    test_form = test_form or PregnancyTestForm(formdata=None, prefix="test", collected_at=minute)
    survey = survey or survey_form(questions, formdata=None, prefix="survey", completed_at=minute)
    auth_form = auth_form or AuthorizationRequestForm(formdata=None, prefix="auth", days_supply=28, quantity=28)
    auth_form.request_key.data = new_request_key()  # each rendering of the form decides at most once
    listed = authorizations.listing(c.uow(), c.actor, c.now, patient_id=patient_id, limit=20)
    return (
        render_template(
            "prescriber/patient.html",
            page_title=f"Patient {view.patient.rems_patient_id}",
            view=view,
            test_form=test_form,
            survey=survey,
            auth_form=auth_form,
            result=result,
            authorizations=listed.items,
            open_statuses=OPEN_STATUSES,
            now=c.now,
            risk_labels=RISK_LABELS,
        ),
        status,
    )


@bp.route("/patients/<uuid:patient_id>", methods=["GET"])
def patient(patient_id: uuid.UUID) -> Any:
    """The patient page: status, testing and survey state, and the three forms."""
    return _patient_page(patient_id)


@bp.route("/patients/<uuid:patient_id>/pregnancy-tests", methods=["POST"])
def record_test(patient_id: uuid.UUID) -> Any:
    """**Record test**: a pregnancy test (a positive result halts the patient at once)."""
    form = PregnancyTestForm(prefix="test")
    if form.validate():
        body = {
            "collected_at": _utc(form.collected_at.data),
            "result": form.result.data,
            "sensitivity_miu_ml": form.sensitivity_miu_ml.data,
        }
        args = load(PregnancyTestCreateSchema(), body, form)
        if args is not None:
            c = ctx()
            try:
                test, row = patients.record_test(c.uow(), c.actor, c.now, c.program, patient_id, **args)
            except (Invalid, Conflict) as exc:
                show_errors(form, exc.field_errors)
                form.form_errors.append(exc.message)
            else:
                flash(
                    f"Pregnancy test recorded ({test.result.value}); the patient is now "
                    f"{row.status.value.replace('_', ' ')}.",
                    "success",
                )
                return redirect(url_for("prescriber.patient", patient_id=patient_id) + "#testing")
    return _patient_page(patient_id, test_form=form, status=422)


@bp.route("/patients/<uuid:patient_id>/surveys", methods=["POST"])
def record_survey(patient_id: uuid.UUID) -> Any:
    """**Record survey**: the patient's answers (a yes that needs attention is flagged)."""
    c = ctx()
    view = patients.get(c.uow(), c.actor, c.now, c.program, patient_id)
    questions = questions_for(view.patient.risk_category)
    form = survey_form(questions, prefix="survey")
    if form.validate():
        body = {
            "completed_at": _utc(form.completed_at.data),
            "answers": {name: bool(getattr(form, name).data) for name in questions},
        }
        args = load(SurveyCreateSchema(), body, form)
        if args is not None:
            try:
                _survey, row = patients.record_survey(c.uow(), c.actor, c.now, c.program, patient_id, **args)
            except (Invalid, Conflict) as exc:
                show_errors(form, exc.field_errors)
                form.form_errors.append(exc.message)
            else:
                flash(f"Survey recorded; the patient is now {row.status.value.replace('_', ' ')}.", "success")
                return redirect(url_for("prescriber.patient", patient_id=patient_id) + "#survey")
    return _patient_page(patient_id, survey=form, status=422)


@bp.route("/patients/<uuid:patient_id>/authorizations", methods=["POST"])
def request_authorization(patient_id: uuid.UUID) -> Any:
    """**Request authorization** (R-AUTH-1): Approved with its number and expiry, or Denied
    with every reason and its next step."""
    form = AuthorizationRequestForm(prefix="auth")
    if not form.validate():
        return _patient_page(patient_id, auth_form=form, status=422)
    body = {
        "patient_id": str(patient_id),
        "days_supply": form.days_supply.data,
        "quantity": form.quantity.data,
        "strength_mg": float(form.strength_mg.data),
        "prescriber_survey": {
            "counseled_on_risks": bool(form.counseled_on_risks.data),
            "contraception_confirmed": bool(form.contraception_confirmed.data),
        },
    }
    args = load(AuthorizationCreateSchema(), body, form)
    if args is None:
        return _patient_page(patient_id, auth_form=form, status=422)
    c = ctx()
    command = authorizations.AuthorizationCommand.of(**args)
    answer = authorizations.request(
        c.uow, c.actor, c.now, c.program, command, idempotency_key=request_key(form.request_key.data), request_body=args
    )
    return _patient_page(patient_id, auth_form=form, result=shown(answer))


@bp.route("/authorizations/<string:number>/void", methods=["POST"])
def void(number: str) -> Response:
    """**Void** an open authorization (a confirmation not yet handed over is voided too)."""
    c = ctx()
    view = authorizations.get(c.uow(), c.actor, c.now, number)
    target = url_for("prescriber.patient", patient_id=view.authorization.patient_id) + "#authorizations"
    try:
        authorizations.void(c.uow(), c.actor, c.now, c.program, number, "voided by the prescriber in the portal")
    except Conflict as exc:
        flash(f"{number}: {exc.message}", "danger")
    else:
        flash(f"Authorization {number} voided.", "success")
    return redirect(target)
