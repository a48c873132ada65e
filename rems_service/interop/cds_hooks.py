"""CDS Hooks 2.0: ``GET /cds-services`` and the three Lenalidomide REMS services (INTEROP.md).

A hook request is validated (its context, and the prefetched Patient, Practitioner and
draft-order Bundle as FHIR R4 resources); only MedicationRequests for a covered product
are considered; the patient's requirement states come from
``services.interop.requirements`` and are rendered as cards. A malformed request is a
400 with a JSON error and never a card that says "met".
"""

from __future__ import annotations

import json
from typing import Any

from fhirclient.models.bundle import Bundle
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.patient import Patient
from fhirclient.models.practitioner import Practitioner
from flask import Blueprint, Response, current_app, jsonify, request
from flask_limiter import RateLimitExceeded

from rems_service import ratelimit
from rems_service.context import ctx
from rems_service.services import interop
from rems_service.services.errors import ServiceError
from rems_service.services.interop import RequirementsView
from rems_service.services.versions import version_at
from workflows.actors import UserRole
from workflows.patients import PatientStatus
from workflows.program import NDC_SYSTEM, RXNORM_SYSTEM
from workflows.requirements import STOPPED_STATUSES

from . import clinical
from .common import BodyTooLarge, authenticate, origin, read_body, unexpected_status

blp = ratelimit.limit_front(Blueprint("cds_hooks", __name__, url_prefix="/cds-services"))

CHANNEL = "cds-hooks"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
SOURCE = {"label": "Lenalidomide REMS"}
PREFETCH = {"patient": "Patient/{{context.patientId}}", "practitioner": "{{context.userId}}"}
#: The services: id → (hook, whether it carries draft orders, title).
SERVICES = {
    "lenalidomide-rems-order-sign": ("order-sign", True, "Lenalidomide REMS check when an order is signed"),
    "lenalidomide-rems-order-select": ("order-select", True, "Lenalidomide REMS check when an order is selected"),
    "lenalidomide-rems-patient-view": ("patient-view", False, "Lenalidomide REMS status of the patient"),
}
MAX_SUMMARY = 140


class Problem(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def _error(problem: Problem) -> Response:
    body: dict[str, Any] = {"code": problem.status, "message": problem.message}
    if problem.field:
        body["errors"] = {problem.field: [problem.message]}
    response = jsonify(body)
    response.status_code = problem.status
    return response


@blp.errorhandler(RateLimitExceeded)
def _too_many(exc: RateLimitExceeded) -> Response:
    """A rate limit (``rems_service.ratelimit``): this front's JSON error, HTTP 429 with ``Retry-After``."""
    return _error(Problem(429, ratelimit.refusal(exc)))


@blp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    """Anything raised outside the view's own handling is still this front's JSON error."""
    status, description = unexpected_status(exc)
    return _error(Problem(status, description))


@blp.route("", methods=["GET"])
def discovery() -> Response:
    """CDS Hooks discovery: the three services with their prefetch templates."""
    return jsonify(
        {
            "services": [
                {
                    "id": service_id,
                    "hook": hook,
                    "title": title,
                    "description": f"{title}: outstanding REMS requirements, or that they are met.",
                    "prefetch": PREFETCH,
                }
                for service_id, (hook, _orders, title) in SERVICES.items()
            ]
        }
    )


@blp.route("/<string:service_id>", methods=["POST"])
def call(service_id: str) -> Response:
    """One hook request → ``{"cards": [...]}``."""
    try:
        if service_id not in SERVICES:
            raise Problem(404, f"No CDS service {service_id!r}.")
        hook, with_orders, _title = SERVICES[service_id]
        actor = authenticate()
        if actor is None:
            raise Problem(401, "A valid bearer token is required (Authorization: Bearer <token>).", "Authorization")
        body = read_body()
        if request.mimetype != "application/json":
            raise Problem(415, "Content-Type must be application/json.")
        if actor.role != UserRole.PRESCRIBER.value:
            raise Problem(403, "CDS Hooks services need a prescriber's token.")
        data = _hook_request(body, hook)
        context, prefetch = data["context"], data["prefetch"]
        patient = _resource(prefetch, "patient", Patient)
        practitioner = _resource(prefetch, "practitioner", Practitioner)
        if context["userId"] not in (f"Practitioner/{practitioner.get('id')}", practitioner.get("id")):
            raise Problem(400, "`context.userId` is not the prefetched Practitioner.", "context.userId")
        c = ctx()
        npis = {i.get("value") for i in practitioner.get("identifier", []) if i.get("system") == NPI_SYSTEM}
        if interop.caller_npi(c.uow(), c.actor) not in npis:
            raise Problem(403, "The prefetched Practitioner's NPI is not the caller's.", "prefetch.practitioner")
        if with_orders and not _covered_orders(context):
            return jsonify({"cards": []})
        system = current_app.config["REMS_PATIENT_ID_SYSTEM"]
        rems_ids = [i.get("value") for i in patient.get("identifier", []) if i.get("system") == system]
        if not rems_ids or not rems_ids[0]:
            if not with_orders:
                return jsonify({"cards": []})  # a patient outside the program, and no lenalidomide order
            return jsonify({"cards": [_not_enrolled()]})
        view = interop.requirements(
            c.uow(),
            c.actor,
            c.now,
            c.program,
            rems_patient_id=str(rems_ids[0]),
            case_number=None,
            origin=origin(CHANNEL, body),
            operation=f"cds-hooks.{hook}",
        )
        return jsonify({"cards": [_card(view)]})
    except BodyTooLarge:
        return _error(Problem(413, "The body is larger than 256 KiB."))
    except Problem as problem:
        return _error(problem)
    except ServiceError as exc:
        return _error(Problem(exc.status, exc.message))


def _hook_request(body: bytes, hook: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "The body is not JSON.") from None
    if not isinstance(data, dict):
        raise Problem(400, "The body must be a CDS Hooks request object.")
    if data.get("hook") != hook:
        raise Problem(400, f"`hook` must be {hook!r} for this service.", "hook")
    if not isinstance(data.get("hookInstance"), str) or not data["hookInstance"]:
        raise Problem(400, "`hookInstance` is required.", "hookInstance")
    context = data.get("context")
    if not isinstance(context, dict):
        raise Problem(400, "`context` is required.", "context")
    for key in ("userId", "patientId"):
        if not isinstance(context.get(key), str) or not context[key]:
            raise Problem(400, f"`context.{key}` is required.", f"context.{key}")
    if not isinstance(data.get("prefetch"), dict):
        raise Problem(
            400, "`prefetch` with `patient` and `practitioner` is required (this service fetches nothing).", "prefetch"
        )
    return data


def _resource(prefetch: dict[str, Any], key: str, model: Any) -> dict[str, Any]:
    resource = prefetch.get(key)
    if not isinstance(resource, dict):
        raise Problem(400, f"`prefetch.{key}` is required.", f"prefetch.{key}")
    try:
        model(resource, strict=True)
    except FHIRValidationError as exc:
        message = " ".join(str(exc).split()).replace("{root}: ", "")[:500]
        raise Problem(400, f"`prefetch.{key}` is not a valid FHIR R4 resource: {message}", f"prefetch.{key}") from None
    except Exception as exc:  # fhirclient raises bare Exception for a wrong resourceType
        raise Problem(400, f"`prefetch.{key}`: {exc}", f"prefetch.{key}") from None
    return resource


def _covered_orders(context: dict[str, Any]) -> bool:
    """Whether ``context.draftOrders`` (a Bundle) holds a MedicationRequest for a covered product."""
    bundle = context.get("draftOrders")
    if not isinstance(bundle, dict):
        raise Problem(400, "`context.draftOrders` (a Bundle of MedicationRequests) is required.", "context.draftOrders")
    try:
        Bundle(bundle, strict=True)
    except FHIRValidationError as exc:
        message = " ".join(str(exc).split()).replace("{root}: ", "")[:500]
        raise Problem(
            400, f"`context.draftOrders` is not a valid FHIR R4 Bundle: {message}", "context.draftOrders"
        ) from None
    except Exception as exc:
        raise Problem(400, f"`context.draftOrders`: {exc}", "context.draftOrders") from None
    c = ctx()
    products = version_at(c.program, c.now).products
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "MedicationRequest":
            continue
        for coding in (resource.get("medicationCodeableConcept") or {}).get("coding", []):
            if coding.get("system") in (RXNORM_SYSTEM, NDC_SYSTEM) and products.covers(
                coding.get("system"), str(coding.get("code", ""))
            ):
                return True
    return False


def _portal(path: str) -> str:
    base = current_app.config.get("PORTAL_URL") or request.url_root
    return base.rstrip("/") + path


def _not_enrolled() -> dict[str, Any]:
    return {
        "summary": "Patient is not enrolled in the Lenalidomide REMS",
        "indicator": "warning",
        "source": SOURCE,
        "detail": "No patient with this REMS patient ID is enrolled with you. Enroll the patient (signed "
        "Patient-Prescriber Agreement, counseling) before prescribing lenalidomide.",
        "links": [{"label": "Enroll the patient", "url": _portal("/prescriber"), "type": "absolute"}],
    }


def _card(view: RequirementsView) -> dict[str, Any]:
    if not view.found:
        return _not_enrolled()
    links = [
        {
            "label": "Open the patient in the REMS portal",
            "url": _portal(f"/prescriber/patients/{view.patient_id}"),
            "type": "absolute",
        }
    ]
    outstanding = [r for r in view.requirements if not r.met]
    lines = [
        f"- **{r.name}** ({reason.rule.value}, {reason.code.value}): {reason.message} Next step: {reason.next_step}"
        for r in outstanding
        for reason in r.reasons
    ]
    clinical_section = _clinical_section(view)
    if view.patient_status in {s.value for s in STOPPED_STATUSES}:
        status = PatientStatus(view.patient_status).value
        return {
            "summary": f"Lenalidomide REMS: patient is {status}; do not prescribe"[:MAX_SUMMARY],
            "indicator": "critical",
            "source": SOURCE,
            "detail": "\n".join(lines + clinical_section),
            "links": links,
        }
    if outstanding:
        return {
            "summary": f"Lenalidomide REMS: {len(outstanding)} requirement(s) outstanding"[:MAX_SUMMARY],
            "indicator": "warning",
            "source": SOURCE,
            "detail": "\n".join(lines + clinical_section),
            "links": links,
        }
    return {
        "summary": "Lenalidomide REMS requirements met",
        "indicator": "info",
        "source": SOURCE,
        "detail": "\n".join(
            [
                "Every REMS requirement is met for this patient. Request the prescription's authorization "
                "(prescriber survey and days' supply) before sending the prescription."
            ]
            + clinical_section
        ),
        "links": links,
    }


def _clinical_section(view: RequirementsView) -> list[str]:
    """CLINICAL_RULES.md's side of the patient, after the REMS requirements: the refusals an
    authorization would meet now (R-CYCLE-3, R-ACK-1) and every warning with its evidence."""
    if not view.warnings and not view.clinical_reasons:
        return []
    out = ["", "**Clinical warnings** (treatment course and labs)"]
    out += [
        f"- **{r.code.value}** ({r.rule.value}): {r.message} Next step: {r.next_step}" for r in view.clinical_reasons
    ]
    out += [clinical.markdown(w) for w in view.warnings]
    return out
