"""The prescriber's pages (UI.md, "Prescriber"): patients, enrollment, tests, surveys, authorizations.

Each view calls the service function the API's views call (``patients.enroll``,
``record_test``, ``record_survey``, ``get``, ``listing``; ``authorizations.request``,
``void``, ``listing``), with the values checked by the API's own request schemas,
so a decision made here is the same recorded Decision, audit entry and replay.

The patient page's **Treatment** section (CLINICAL_RULES.md) reads ``courses.summary``
(the call behind ``GET /patients/{id}/treatment``) and draws it with
``rems_service.charts``; its forms call ``courses.start``, ``hold``, ``resume``,
``change_dose``, ``stop`` and ``labs.record``, checked by the API's clinical schemas.
A denial citing critical warnings offers their R-ACK-1 acknowledgements on the form.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response

from rems_service import charts
from rems_service.api.decisions import guarded_body
from rems_service.context import ctx
from rems_service.schemas.clinical import (
    CourseCreateSchema,
    CourseDoseSchema,
    CourseHoldSchema,
    CourseResumeSchema,
    CourseStopSchema,
    LabCreateSchema,
)
from rems_service.schemas.decisions import AuthorizationCreateSchema
from rems_service.schemas.patients import PatientEnrollSchema, PregnancyTestCreateSchema, SurveyCreateSchema
from rems_service.services import authorizations, courses, labs, patients
from rems_service.services.errors import Conflict, Invalid
from workflows.actors import UserRole
from workflows.audit import PORTAL_ORIGIN
from workflows.authorizations import OPEN_STATUSES
from workflows.surveys import questions_for

from . import page_blueprint
from .decisions import new_request_key, request_key, rules_to_acknowledge, shown
from .forms import (
    ACK_RULES,
    COURSE_REASON_LABELS,
    REGIMEN_LABELS,
    RISK_LABELS,
    AcknowledgementForm,
    AuthorizationRequestForm,
    CourseDoseForm,
    CourseHoldForm,
    CourseResumeForm,
    CourseStartForm,
    CourseStopForm,
    EnrollForm,
    LabResultForm,
    PregnancyTestForm,
    acknowledgement_forms,
    acknowledgements_sent,
    course_body,
    load,
    set_lab_choices,
    show_errors,
    survey_form,
    utc_text,
)

bp = page_blueprint("prescriber", __name__, url_prefix="/prescriber", roles=[UserRole.PRESCRIBER])

PAGE_SIZE = 50


_utc = utc_text


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
    acks: list[AcknowledgementForm] | None = None,
    treatment_forms: dict[str, FlaskForm] | None = None,
) -> tuple[str, int]:
    c = ctx()
    view = patients.get(c.uow(), c.actor, c.now, c.program, patient_id)
    # The Treatment section: the same service call as GET /patients/{id}/treatment and its charts.
    try:
        summary: dict[str, Any] | None = courses.summary(c.uow(), c.actor, c.now, c.program, patient_id)
    except Conflict:  # a program version without a clinical table keeps no courses
        summary = None
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
            acks=acks or [],
            ack_rules_field=ACK_RULES,
            authorizations=listed.items,
            summary=summary,
            # Plain SVG built (every label escaped, no script) by rems_service.charts, as the API serves it.
            cbc_chart=Markup(charts.cbc_svg(summary)) if summary else None,
            m_protein_chart=Markup(charts.m_protein_svg(summary)) if summary else None,
            treatment=_treatment_forms(summary, c.now, treatment_forms or {}) if summary else {},
            reason_labels=COURSE_REASON_LABELS,
            regimen_labels=REGIMEN_LABELS,
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
    # R-ACK-1: the acknowledgements this form offered (after a denial citing critical warnings).
    acks = acknowledgement_forms(request.form.getlist(ACK_RULES), contact=False, formdata=request.form)
    if not all([form.validate(), *(a.validate() for a in acks)]):
        return _patient_page(patient_id, auth_form=form, status=422, acks=acks)
    body = {
        "patient_id": str(patient_id),
        "days_supply": form.days_supply.data,
        "quantity": form.quantity.data,
        "strength_mg": float(form.strength_mg.data),
        "prescriber_survey": {
            "counseled_on_risks": bool(form.counseled_on_risks.data),
            "contraception_confirmed": bool(form.contraception_confirmed.data),
        },
        "acknowledgements": acknowledgements_sent(acks),
    }
    args = load(AuthorizationCreateSchema(), body, form)
    if args is None:
        return _patient_page(patient_id, auth_form=form, status=422, acks=acks)
    c = ctx()
    command = authorizations.AuthorizationCommand.of(**args)
    answer = authorizations.request(
        c.uow,
        c.actor,
        c.now,
        c.program,
        command,
        idempotency_key=request_key(form.request_key.data),
        request_body=guarded_body(args),
        origin=PORTAL_ORIGIN,
    )
    result = shown(answer)
    acks = acknowledgement_forms(rules_to_acknowledge(result), contact=False, formdata=request.form)
    return _patient_page(patient_id, auth_form=form, result=result, acks=acks)


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


# Treatment (CLINICAL_RULES.md): the course, its holds and doses, lab results and their charts

#: The course actions: the form, the API schema checking its body, the service call, what the flash says.
COURSE_ACTIONS: dict[str, tuple[type[FlaskForm], Any, Any, str]] = {
    "hold": (CourseHoldForm, CourseHoldSchema, courses.hold, "Treatment course held"),
    "resume": (CourseResumeForm, CourseResumeSchema, courses.resume, "Treatment course resumed"),
    "change-dose": (CourseDoseForm, CourseDoseSchema, courses.change_dose, "Dose changed"),
    "stop": (CourseStopForm, CourseStopSchema, courses.stop, "Treatment course stopped"),
}
#: The actions each course status allows (``workflows.courses.CourseLifecycle``).
ACTIONS_BY_STATUS = {"active": ("hold", "change-dose", "stop"), "on_hold": ("resume", "stop"), "stopped": ()}


#: How many of the newest blood counts a hold, resume or dose change offers as its evidence.
LAB_CHOICES = 8
_COUNT_NAMES = {"platelets": "Platelets", "anc": "ANC", "hemoglobin": "Hemoglobin", "wbc": "WBC"}
_UNITS = {"10*3/uL": "×10³/µL"}


def lab_choices(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The newest blood counts of the summary, as the labs a course change may cite."""
    points = [(p["collected_at"], kind, p) for kind, series in summary["cbc"]["series"].items() for p in series]
    points.sort(key=lambda item: item[0], reverse=True)
    return [
        (
            str(p["lab_id"]),
            f"{_COUNT_NAMES.get(kind, kind)} {p['value']:g} {_UNITS.get(p['unit'], p['unit'])} "
            f"on {at.strftime('%Y-%m-%d %H:%M')} UTC",
        )
        for at, kind, p in points[:LAB_CHOICES]
    ]


def _treatment_forms(summary: dict[str, Any], now: datetime, given: dict[str, FlaskForm]) -> dict[str, FlaskForm]:
    """The Treatment section's forms: start (no course, or a stopped one), the course's actions, a lab result."""
    course = summary["course"]
    status = course["status"] if course else "stopped"
    forms: dict[str, FlaskForm] = {}
    if status == "stopped":
        forms["start"] = given.get("start") or CourseStartForm(formdata=None, prefix="course", start_date=now.date())
    labs_choices = lab_choices(summary)
    for name in ACTIONS_BY_STATUS.get(status, ()):
        forms[name] = set_lab_choices(
            given.get(name) or COURSE_ACTIONS[name][0](formdata=None, prefix=name), labs_choices
        )
    minute = now.replace(second=0, microsecond=0, tzinfo=None)
    forms["lab"] = given.get("lab") or LabResultForm(formdata=None, prefix="lab", collected_at=minute)
    return forms


def _course_conflict(patient_id: uuid.UUID, exc: Conflict) -> Response:
    flash(f"Nothing changed: {exc.message}", "danger")
    return redirect(url_for("prescriber.patient", patient_id=patient_id) + "#treatment")


@bp.route("/patients/<uuid:patient_id>/courses", methods=["POST"])
def start_course(patient_id: uuid.UUID) -> Any:
    """**Start course**: a treatment course for the patient (``courses.start``)."""
    form = CourseStartForm(prefix="course")
    if form.validate():
        args = load(CourseCreateSchema(), form.api_body(), form)
        if args is not None:
            c = ctx()
            try:
                view = courses.start(c.uow(), c.actor, c.now, c.program, patient_id, courses.NewCourse(**args))
            except Invalid as exc:
                show_errors(form, exc.field_errors)
                form.form_errors.append(exc.message)
            except Conflict as exc:  # a course already kept (a page left open): nothing changed
                return _course_conflict(patient_id, exc)
            else:
                flash(f"Treatment course started at {view.course.dose_mg:g} mg.", "success")
                return redirect(url_for("prescriber.patient", patient_id=patient_id) + "#treatment")
    return _patient_page(patient_id, treatment_forms={"start": form}, status=422)


@bp.route("/patients/<uuid:patient_id>/courses/<uuid:course_id>/<string:action>", methods=["POST"])
def course_action(patient_id: uuid.UUID, course_id: uuid.UUID, action: str) -> Any:
    """**Hold course**, **Resume course**, **Change dose**, **Stop course** (``courses.hold`` …)."""
    if action not in COURSE_ACTIONS:
        abort(404)
    form_class, schema, call, done = COURSE_ACTIONS[action]
    c = ctx()
    if courses.get(c.uow(), c.actor, c.now, c.program, course_id).course.patient_id != patient_id:
        abort(404)  # another patient's course under this patient's URL
    form = form_class(prefix=action)
    try:
        set_lab_choices(form, lab_choices(courses.summary(c.uow(), c.actor, c.now, c.program, patient_id)))
    except Conflict:
        abort(404)  # no clinical table in force: no course to act on
    if form.validate():
        args = load(schema(), course_body(form), form)
        if args is not None:
            try:
                view = call(c.uow(), c.actor, c.now, c.program, course_id, **args)
            except Invalid as exc:
                show_errors(form, exc.field_errors)
                form.form_errors.append(exc.message)
            except Conflict as exc:  # the course's state no longer allows it (a page left open)
                return _course_conflict(patient_id, exc)
            else:
                status = view.course.status.value.replace("_", " ")
                flash(f"{done}; the course is {status} at {view.course.dose_mg:g} mg.", "success")
                return redirect(url_for("prescriber.patient", patient_id=patient_id) + "#treatment")
    return _patient_page(patient_id, treatment_forms={action: form}, status=422)


@bp.route("/patients/<uuid:patient_id>/labs", methods=["POST"])
def record_lab(patient_id: uuid.UUID) -> Any:
    """**Record lab result**: a result by LOINC code, converted to its canonical unit (``labs.record``)."""
    form = LabResultForm(prefix="lab")
    if form.validate():
        args = load(LabCreateSchema(), form.api_body(), form)
        if args is not None:
            c = ctx()
            try:
                recorded = labs.record(c.uow(), c.actor, c.now, c.program, patient_id, labs.LabInput(**args))
            except (Invalid, Conflict) as exc:
                show_errors(form, exc.field_errors)
                form.form_errors.append(exc.message)
            else:
                critical = f"; critical: {', '.join(recorded.critical_rules)}" if recorded.critical_rules else ""
                flash(f"Lab result recorded ({recorded.loinc}){critical}.", "success")
                return redirect(url_for("prescriber.patient", patient_id=patient_id) + "#treatment")
    return _patient_page(patient_id, treatment_forms={"lab": form}, status=422)
