"""Patients (R-PAT-1/2, R-CAT-1/2, R-PREG-1..5, R-SURV-1/2)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint

from rems_service.auth import current_actor, protect, roles
from rems_service.clock import request_now
from rems_service.db.models import UserRole
from rems_service.runtime import get_runtime
from rems_service.schemas.common import OptionalReasonSchema
from rems_service.schemas.patients import (
    PatientDetailSchema,
    PatientEnrollSchema,
    PatientSchema,
    PregnancyTestCreateSchema,
    PregnancyTestSchema,
    SurveyCreateSchema,
    SurveySchema,
)
from rems_service.services import patients

blp = protect(
    Blueprint(
        "patients",
        __name__,
        url_prefix="/api/v1/patients",
        description="Patient enrollment, pregnancy tests and surveys",
    )
)

ADMIN, PRESCRIBER = UserRole.ADMIN, UserRole.PRESCRIBER


@blp.route("", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(PatientEnrollSchema)
@blp.response(201, PatientSchema)
def enroll(args):
    """Enroll a patient with the calling prescriber (R-PAT-1). Uncertified prescriber → 409."""
    runtime = get_runtime()
    return patients.enroll(runtime.uow(), current_actor(), request_now(), runtime.program, **args)


@blp.route("/<uuid:patient_id>", methods=["GET"])
@roles(ADMIN, PRESCRIBER)
@blp.response(200, PatientDetailSchema)
def get(patient_id: UUID):
    """The patient with ``pregnancy_testing`` and ``survey`` status at the request's time."""
    runtime = get_runtime()
    view = patients.get(runtime.uow(), current_actor(), request_now(), runtime.program, patient_id)
    return {
        **view.patient.model_dump(),
        "pregnancy_testing": {
            "state": view.testing.state.value,
            "next_test_due_at": view.testing.next_test_due_at,
            "interval_days": view.testing.interval_days,
            "reasons": [r.as_dict() for r in view.testing.reasons],
        },
        "survey": {
            "last_completed_at": view.survey.last_completed_at,
            "next_due_at": view.survey.next_due_at,
            "current": view.survey.current,
        },
        "program_version": view.program_version,
    }


def _with_status(record: Any, patient: Any) -> dict[str, Any]:
    return {**record.model_dump(), "patient_status": patient.status.value}


@blp.route("/<uuid:patient_id>/pregnancy-tests", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(PregnancyTestCreateSchema)
@blp.response(201, PregnancyTestSchema)
def record_test(args, patient_id: UUID):
    """Record a test. Sensitivity above 50, a future date or a non-FRP patient → 422.
    A positive result halts the patient at once (R-PREG-4)."""
    runtime = get_runtime()
    record, patient = patients.record_test(
        runtime.uow(), current_actor(), request_now(), runtime.program, patient_id, **args
    )
    return _with_status(record, patient)


@blp.route("/<uuid:patient_id>/surveys", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(SurveyCreateSchema)
@blp.response(201, SurveySchema)
def record_survey(args, patient_id: UUID):
    """Record the patient's survey answers; a `true` flag moves the patient to `needs_intervention`."""
    runtime = get_runtime()
    record, patient = patients.record_survey(
        runtime.uow(), current_actor(), request_now(), runtime.program, patient_id, **args
    )
    return _with_status(record, patient)


@blp.route("/<uuid:patient_id>/reinstate", methods=["POST"])
@roles(ADMIN)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PatientSchema)
def reinstate(args, patient_id: UUID):
    """Reinstate a halted patient after review (program administrator)."""
    runtime = get_runtime()
    return patients.reinstate(
        runtime.uow(), current_actor(), request_now(), runtime.program, patient_id, args.get("reason")
    )


@blp.route("/<uuid:patient_id>/resolve-intervention", methods=["POST"])
@roles(ADMIN)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PatientSchema)
def resolve_intervention(args, patient_id: UUID):
    """Resolve a patient in `needs_intervention` (program administrator)."""
    runtime = get_runtime()
    return patients.resolve_intervention(
        runtime.uow(), current_actor(), request_now(), runtime.program, patient_id, args.get("reason")
    )


@blp.route("/<uuid:patient_id>/discontinue", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PatientSchema)
def discontinue(args, patient_id: UUID):
    """Discontinue the patient (final); only the patient's prescriber."""
    runtime = get_runtime()
    return patients.discontinue(
        runtime.uow(), current_actor(), request_now(), runtime.program, patient_id, args.get("reason")
    )
