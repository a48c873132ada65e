"""Treatment courses, lab results and the treatment summary (CLINICAL_RULES.md)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response
from flask_smorest import Blueprint

from rems_service import charts
from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.clinical import (
    CourseCreateSchema,
    CourseDoseSchema,
    CourseHoldSchema,
    CourseListSchema,
    CourseReadQuerySchema,
    CourseResumeSchema,
    CourseSchema,
    CourseStopSchema,
    LabCreateSchema,
    LabListSchema,
    LabQuerySchema,
    LabSchema,
    TreatmentSummarySchema,
)
from rems_service.services import courses, labs
from workflows.actors import UserRole

blp = protect(
    Blueprint(
        "clinical",
        __name__,
        url_prefix="/api/v1",
        description="Treatment courses, lab results and clinical advisories (CLINICAL_RULES.md)",
    )
)

ADMIN, PRESCRIBER, PHARMACIST = UserRole.ADMIN, UserRole.PRESCRIBER, UserRole.PHARMACIST
SVG_HEADERS = {
    "Content-Type": "image/svg+xml; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


@blp.route("/patients/<uuid:patient_id>/courses", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(CourseCreateSchema)
@blp.response(201, CourseSchema)
def start_course(args: dict[str, Any], patient_id: UUID) -> dict[str, Any]:
    """Start a treatment course for the calling prescriber's patient.

    At most one course that is not `stopped` per patient (409). `days_on` and
    `cycle_length_days` default to the regimen's (program definition)."""
    c = ctx()
    return courses.start(c.uow(), c.actor, c.now, c.program, patient_id, courses.NewCourse(**args)).as_dict()


@blp.route("/patients/<uuid:patient_id>/courses", methods=["GET"])
@roles(ADMIN, PRESCRIBER, PHARMACIST)
@blp.arguments(CourseReadQuerySchema, location="query")
@blp.response(200, CourseListSchema)
def list_courses(args: dict[str, Any], patient_id: UUID) -> dict[str, Any]:
    """The patient's courses, newest first, with their events (its prescriber, admins, a
    pharmacist presenting `authorization_number`, a valid authorization for the patient)."""
    c = ctx()
    views = courses.for_patient(c.uow(), c.actor, c.now, c.program, patient_id, args.get("authorization_number"))
    return {"items": [v.as_dict() for v in views]}


@blp.route("/courses/<uuid:course_id>", methods=["GET"])
@roles(ADMIN, PRESCRIBER, PHARMACIST)
@blp.arguments(CourseReadQuerySchema, location="query")
@blp.response(200, CourseSchema)
def get_course(args: dict[str, Any], course_id: UUID) -> dict[str, Any]:
    """The course with its cycle position and events (readers as for the patient's courses)."""
    c = ctx()
    return courses.get(c.uow(), c.actor, c.now, c.program, course_id, args.get("authorization_number")).as_dict()


@blp.route("/courses/<uuid:course_id>/hold", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(CourseHoldSchema)
@blp.response(200, CourseSchema)
def hold_course(args: dict[str, Any], course_id: UUID) -> dict[str, Any]:
    """Hold an active course (R-CYCLE-3: authorizations and dispenses are then refused
    with `TREATMENT_ON_HOLD`). Not active → 409."""
    c = ctx()
    return courses.hold(c.uow(), c.actor, c.now, c.program, course_id, **args).as_dict()


@blp.route("/courses/<uuid:course_id>/resume", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(CourseResumeSchema)
@blp.response(200, CourseSchema)
def resume_course(args: dict[str, Any], course_id: UUID) -> dict[str, Any]:
    """Resume a held course, optionally at a new `dose_mg`. Not on hold → 409."""
    c = ctx()
    return courses.resume(c.uow(), c.actor, c.now, c.program, course_id, **args).as_dict()


@blp.route("/courses/<uuid:course_id>/change-dose", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(CourseDoseSchema)
@blp.response(200, CourseSchema)
def change_dose(args: dict[str, Any], course_id: UUID) -> dict[str, Any]:
    """Change the dose of an active course, with a coded reason. Not active → 409."""
    c = ctx()
    return courses.change_dose(c.uow(), c.actor, c.now, c.program, course_id, **args).as_dict()


@blp.route("/courses/<uuid:course_id>/stop", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(CourseStopSchema)
@blp.response(200, CourseSchema)
def stop_course(args: dict[str, Any], course_id: UUID) -> dict[str, Any]:
    """Stop the course (final). Already stopped → 409."""
    c = ctx()
    return courses.stop(c.uow(), c.actor, c.now, c.program, course_id, **args).as_dict()


@blp.route("/patients/<uuid:patient_id>/labs", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(LabCreateSchema)
@blp.response(201, LabSchema)
def record_lab(args: dict[str, Any], patient_id: UUID) -> dict[str, Any]:
    """Record a lab result by LOINC code, converted to the code's canonical unit.

    Unknown code, inconvertible unit or future `collected_at` → 422 naming the
    field. A pregnancy code (2106-3, 2118-8, 19080-1, 21198-7) records the same
    pregnancy test as `POST /patients/{id}/pregnancy-tests` (R-PREG rules apply)."""
    c = ctx()
    return labs.record(c.uow(), c.actor, c.now, c.program, patient_id, labs.LabInput(**args)).as_dict()


@blp.route("/patients/<uuid:patient_id>/labs", methods=["GET"])
@roles(ADMIN, PRESCRIBER, PHARMACIST)
@blp.arguments(LabQuerySchema, location="query")
@blp.response(200, LabListSchema)
def list_labs(args: dict[str, Any], patient_id: UUID) -> dict[str, Any]:
    """The patient's lab results, oldest first (`loinc` selects one code)."""
    c = ctx()
    found = labs.listing(c.uow(), c.actor, c.now, patient_id, args.get("loinc"), args.get("authorization_number"))
    return {"items": [r.as_dict() for r in found]}


@blp.route("/patients/<uuid:patient_id>/treatment", methods=["GET"])
@roles(ADMIN, PRESCRIBER, PHARMACIST)
@blp.arguments(CourseReadQuerySchema, location="query")
@blp.response(200, TreatmentSummarySchema)
def treatment_summary(args: dict[str, Any], patient_id: UUID) -> dict[str, Any]:
    """The patient's treatment: cycle calendar, holds and dose history, CBC series against
    the hold thresholds, M-protein trend with its IMWG response category, current advisories."""
    c = ctx()
    return courses.summary(c.uow(), c.actor, c.now, c.program, patient_id, args.get("authorization_number"))


def _svg(args: dict[str, Any], patient_id: UUID, draw: Any) -> Response:
    c = ctx()
    data = courses.summary(c.uow(), c.actor, c.now, c.program, patient_id, args.get("authorization_number"))
    return Response(draw(data), status=200, headers=SVG_HEADERS)


@blp.route("/patients/<uuid:patient_id>/charts/cbc.svg", methods=["GET"])
@roles(ADMIN, PRESCRIBER, PHARMACIST)
@blp.arguments(CourseReadQuerySchema, location="query")
@blp.response(200, description="An SVG chart (image/svg+xml): platelets and ANC against the hold thresholds.")
def cbc_chart(args: dict[str, Any], patient_id: UUID) -> Response:
    """Platelets and ANC over time against the hold thresholds (SVG, no script)."""
    return _svg(args, patient_id, charts.cbc_svg)


@blp.route("/patients/<uuid:patient_id>/charts/m-protein.svg", methods=["GET"])
@roles(ADMIN, PRESCRIBER, PHARMACIST)
@blp.arguments(CourseReadQuerySchema, location="query")
@blp.response(200, description="An SVG chart (image/svg+xml): serum M-protein with its response category.")
def m_protein_chart(args: dict[str, Any], patient_id: UUID) -> Response:
    """Serum M-protein over time from its baseline, with the IMWG response category (SVG, no script)."""
    return _svg(args, patient_id, charts.m_protein_svg)
