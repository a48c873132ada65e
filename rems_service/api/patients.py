"""Patients: enrollment, pregnancy tests, surveys and status changes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import RAISE

from rems_service.auth import protect, roles
from rems_service.context import ctx
from rems_service.schemas.common import OptionalReasonSchema
from rems_service.schemas.lists import PatientListQuerySchema, PatientPageSchema
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
from workflows.actors import UserRole

blp = protect(
    Blueprint(
        "patients",
        __name__,
        url_prefix="/api/v1/patients",
        description="Patient enrollment, pregnancy tests and surveys",
    )
)

ADMIN, PRESCRIBER = UserRole.ADMIN, UserRole.PRESCRIBER


def _detail(view: patients.PatientView) -> dict[str, Any]:
    return {
        **view.patient.model_dump(),
        "pregnancy_testing": view.testing_dict(),
        "survey": view.survey_dict(),
        "program_version": view.program_version,
    }


def _with_status(recorded: tuple[Any, Any]) -> dict[str, Any]:
    """A recorded test or survey, with the patient's status after it."""
    record, patient = recorded
    return {**record.model_dump(), "patient_status": patient.status.value}


@blp.route("", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(PatientEnrollSchema)
@blp.response(201, PatientSchema)
def enroll(args: dict[str, Any]) -> Any:
    """Enroll a patient with the calling prescriber. Uncertified prescriber → 409."""
    c = ctx()
    return patients.enroll(c.uow(), c.actor, c.now, c.program, **args)


@blp.route("", methods=["GET"])
@roles(ADMIN, PRESCRIBER)
@blp.arguments(PatientListQuerySchema, location="query", unknown=RAISE)
@blp.response(200, PatientPageSchema)
def list_patients(args: dict[str, Any]) -> dict[str, Any]:
    """A prescriber's own patients (every one for admins), newest first; `next_cursor` fetches the next page.

    Due dates and the `*_due_before` filters are the reminder mirrors of the
    patient row; `GET /patients/{id}` computes the testing and survey status
    at the request's time."""
    c = ctx()
    page = patients.listing(c.uow(), c.actor, c.now, c.program, **args)
    return {"items": [row.model_dump() for row in page.items], "next_cursor": page.next_cursor}


@blp.route("/<uuid:patient_id>", methods=["GET"])
@roles(ADMIN, PRESCRIBER)
@blp.response(200, PatientDetailSchema)
def get(patient_id: UUID) -> dict[str, Any]:
    """The patient with ``pregnancy_testing`` and ``survey`` status at the request's time."""
    c = ctx()
    return _detail(patients.get(c.uow(), c.actor, c.now, c.program, patient_id))


@blp.route("/<uuid:patient_id>/pregnancy-tests", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(PregnancyTestCreateSchema)
@blp.response(201, PregnancyTestSchema)
def record_test(args: dict[str, Any], patient_id: UUID) -> dict[str, Any]:
    """Record a pregnancy test.

    A sensitivity above the program's maximum, a future `collected_at` or a
    patient who cannot become pregnant → 422. A positive result halts the
    patient at once."""
    c = ctx()
    return _with_status(patients.record_test(c.uow(), c.actor, c.now, c.program, patient_id, **args))


@blp.route("/<uuid:patient_id>/surveys", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(SurveyCreateSchema)
@blp.response(201, SurveySchema)
def record_survey(args: dict[str, Any], patient_id: UUID) -> dict[str, Any]:
    """Record the patient's survey answers; a `true` flag moves the patient to `needs_intervention`."""
    c = ctx()
    return _with_status(patients.record_survey(c.uow(), c.actor, c.now, c.program, patient_id, **args))


@blp.route("/<uuid:patient_id>/reinstate", methods=["POST"])
@roles(ADMIN)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PatientSchema)
def reinstate(args: dict[str, Any], patient_id: UUID) -> Any:
    """Reinstate a halted patient after review (program administrator)."""
    c = ctx()
    return patients.reinstate(c.uow(), c.actor, c.now, c.program, patient_id, args.get("reason"))


@blp.route("/<uuid:patient_id>/resolve-intervention", methods=["POST"])
@roles(ADMIN)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PatientSchema)
def resolve_intervention(args: dict[str, Any], patient_id: UUID) -> Any:
    """Resolve a patient in `needs_intervention` (program administrator)."""
    c = ctx()
    return patients.resolve_intervention(c.uow(), c.actor, c.now, c.program, patient_id, args.get("reason"))


@blp.route("/<uuid:patient_id>/discontinue", methods=["POST"])
@roles(PRESCRIBER)
@blp.arguments(OptionalReasonSchema)
@blp.response(200, PatientSchema)
def discontinue(args: dict[str, Any], patient_id: UUID) -> Any:
    """Discontinue the patient (final); only the patient's prescriber."""
    c = ctx()
    return patients.discontinue(c.uow(), c.actor, c.now, c.program, patient_id, args.get("reason"))
