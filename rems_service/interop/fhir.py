"""HL7 FHIR R4 under ``/fhir``: ``metadata`` and ``GuidanceResponse/$rems-etasu`` (INTEROP.md).

Resources in and out are validated against FHIR R4 (4.0.1) with the SMART ``fhirclient``
models, generated from the R4 specification (``strict``: unknown elements, wrong
types, missing required elements and malformed primitives are refused). The
requirement states come from ``services.interop.requirements``, which computes them
with the same pure functions that decide authorizations.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.parameters import Parameters
from flask import Blueprint, Response, current_app, request
from flask_limiter import RateLimitExceeded

from rems_service import ratelimit
from rems_service.context import ctx
from rems_service.services import interop
from rems_service.services.errors import ServiceError
from rems_service.services.interop import RequirementsView
from rems_service.services.versions import version_at
from workflows.actors import UserRole
from workflows.program import NDC_SYSTEM, RXNORM_SYSTEM
from workflows.requirements import Requirement

from . import clinical
from .common import BodyTooLarge, authenticate, origin, read_body, unexpected_status

blp = ratelimit.limit_front(Blueprint("fhir", __name__, url_prefix="/fhir"))

CHANNEL = "fhir"
MIME = "application/fhir+json"
ACCEPTED_TYPES = frozenset({"application/fhir+json", "application/json"})
FHIR_VERSION = "4.0.1"
#: The HL7 US Medication REMS IG's canonical URL (GuidanceResponse.moduleUri).
IG_URL = "http://hl7.org/fhir/us/medication-rems/ImplementationGuide/hl7.fhir.us.medication-rems"
OPERATION_URL = "http://hl7.org/fhir/us/medication-rems/OperationDefinition/REMS-ETASU"
OUTPUT_ID = "etasuOutputParameters"


class Problem(Exception):
    """An ``OperationOutcome`` answer: HTTP ``status``, issue ``code`` and what is wrong."""

    def __init__(self, status: int, code: str, diagnostics: str, expression: str | None = None):
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics, self.expression = status, code, diagnostics, expression


def _answer(resource: dict[str, Any], status: int = 200) -> Response:
    return current_app.response_class(json.dumps(resource), status=status, mimetype=MIME)


def _outcome(problem: Problem) -> Response:
    issue: dict[str, Any] = {"severity": "error", "code": problem.code, "diagnostics": problem.diagnostics}
    if problem.expression:
        issue["expression"] = [problem.expression]
    return _answer({"resourceType": "OperationOutcome", "issue": [issue]}, problem.status)


_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 409: "conflict", 422: "processing", 503: "transient"}


@blp.errorhandler(RateLimitExceeded)
def _too_many(exc: RateLimitExceeded) -> Response:
    """A rate limit (``rems_service.ratelimit``): an OperationOutcome ``throttled``, HTTP 429 with ``Retry-After``."""
    return _outcome(Problem(429, "throttled", ratelimit.refusal(exc)))


@blp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    """Anything raised outside the view's own handling is still an OperationOutcome."""
    status, description = unexpected_status(exc)
    return _outcome(Problem(status, _ISSUE_CODES.get(status, "exception"), description))


@blp.route("/metadata", methods=["GET"])
def metadata() -> Response:
    """The CapabilityStatement: FHIR R4, JSON, the ``$rems-etasu`` operation (public, like the
    API's own description)."""
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-27",
        "kind": "instance",
        "software": {"name": "Lenalidomide REMS"},
        "implementation": {"description": "Lenalidomide REMS workflow service", "url": request.url_root + "fhir"},
        "fhirVersion": FHIR_VERSION,
        "format": [MIME, "json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "Authorization: Bearer <token> (a prescriber's, pharmacist's or admin's)."},
                "resource": [
                    {
                        "type": "GuidanceResponse",
                        "operation": [{"name": "rems-etasu", "definition": OPERATION_URL}],
                    }
                ],
            }
        ],
    }
    CapabilityStatement(statement, strict=True)  # our own answer is valid R4 too
    return _answer(statement)


@blp.route("/GuidanceResponse/$rems-etasu", methods=["POST"])
def rems_etasu() -> Response:
    """Which REMS requirements (ETASU) are met for this patient and drug, and which are not."""
    try:
        actor = authenticate()
        if actor is None:
            raise Problem(401, "login", "A valid bearer token is required (Authorization: Bearer <token>).")
        body = read_body()
        if request.mimetype not in ACCEPTED_TYPES:
            raise Problem(415, "not-supported", "Content-Type must be application/fhir+json.")
        parameters = _parameters(body)
        rems_patient_id, case_number = _patient_id(parameters), _case_number(parameters)
        _check_medication(parameters)
        if rems_patient_id is None and case_number is None:
            raise Problem(400, "required", "Send `patient` (with the REMS patient ID) and/or `case_number`.")
        if actor.role == UserRole.PHARMACIST.value and (rems_patient_id is None or case_number is None):
            raise Problem(
                400, "required", "A pharmacist names the patient (REMS patient ID) together with `case_number`."
            )
        c = ctx()
        view = interop.requirements(
            c.uow(),
            c.actor,
            c.now,
            c.program,
            rems_patient_id=rems_patient_id,
            case_number=case_number,
            origin=origin(CHANNEL, body),
            operation="fhir.rems-etasu",
        )
        result = _render(view, rems_patient_id, case_number)
        Parameters(result, strict=True)
        return _answer(result)
    except BodyTooLarge:
        return _outcome(Problem(413, "too-costly", "The body is larger than 256 KiB."))
    except Problem as problem:
        return _outcome(problem)
    except ServiceError as exc:
        return _outcome(Problem(exc.status, _ISSUE_CODES.get(exc.status, "processing"), exc.message))


def _parameters(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "structure", "The body is not JSON.") from None
    if not isinstance(data, dict) or data.get("resourceType") != "Parameters":
        raise Problem(400, "structure", "The body must be a FHIR R4 Parameters resource.")
    try:
        Parameters(data, strict=True)
    except FHIRValidationError as exc:
        raise Problem(400, "structure", f"Not a valid FHIR R4 Parameters: {_describe(exc)}") from None
    except Exception as exc:  # fhirclient raises bare Exception for a wrong nested resourceType
        raise Problem(400, "structure", f"Not a valid FHIR R4 Parameters: {exc}") from None
    return data


def _describe(exc: FHIRValidationError) -> str:
    """The validation errors as one line, without fhirclient's object addresses."""
    text = " ".join(str(exc).split())
    return text.replace("{root}: ", "")[:1000]


def _named(parameters: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    return [p for p in parameters.get("parameter", []) if p.get("name") in names]


def _patient_id(parameters: dict[str, Any]) -> str | None:
    found = _named(parameters, "patient")
    if not found:
        return None
    resource = found[0].get("resource") or {}
    if resource.get("resourceType") != "Patient":
        raise Problem(400, "structure", "Parameter `patient` must hold a Patient.", "Parameters.parameter.resource")
    system = current_app.config["REMS_PATIENT_ID_SYSTEM"]
    for identifier in resource.get("identifier", []):
        if identifier.get("system") == system and identifier.get("value"):
            return str(identifier["value"]).strip()
    raise Problem(
        400,
        "required",
        f"The Patient carries no identifier of system {system} (the REMS patient ID).",
        "Patient.identifier",
    )


def _case_number(parameters: dict[str, Any]) -> str | None:
    found = _named(parameters, "case_number", "caseNumber")
    if not found:
        return None
    value = found[0].get("valueString")
    if not isinstance(value, str) or not value.strip():
        raise Problem(400, "required", "Parameter `case_number` needs a valueString (the authorization number).")
    return value.strip()


def _codings(resource: dict[str, Any]) -> list[dict[str, Any]]:
    kind = resource.get("resourceType")
    if kind == "Medication":
        return list((resource.get("code") or {}).get("coding", []))
    if kind == "MedicationRequest":
        return list((resource.get("medicationCodeableConcept") or {}).get("coding", []))
    raise Problem(400, "structure", "Parameter `medication` must hold a Medication or a MedicationRequest.")


def _check_medication(parameters: dict[str, Any]) -> None:
    """A medication, when sent, must be a product the program covers (422 otherwise)."""
    found = _named(parameters, "medication")
    if not found:
        return
    c = ctx()
    products = version_at(c.program, c.now).products
    codings = _codings(found[0].get("resource") or {})
    if not any(
        products.covers(coding.get("system"), str(coding.get("code", "")))
        for coding in codings
        if coding.get("system") in (RXNORM_SYSTEM, NDC_SYSTEM)
    ):
        raise Problem(
            422,
            "not-supported",
            "The medication is not a product the Lenalidomide REMS covers (RxNorm or NDC codes of lenalidomide).",
        )


def _status(requirement: Requirement) -> str:
    return "success" if requirement.met else "data-required"


def _note(requirement: Requirement) -> str:
    if requirement.met:
        return f"{requirement.rule.value}: met."
    return " ".join(f"{r.rule.value} {r.code.value}: {r.message} Next step: {r.next_step}" for r in requirement.reasons)


def _render(view: RequirementsView, rems_patient_id: str | None, case_number: str | None) -> dict[str, Any]:
    """The output Parameters: one ``rems-etasu`` GuidanceResponse."""
    system = current_app.config["REMS_PATIENT_ID_SYSTEM"]
    subject_id = view.rems_patient_id or rems_patient_id
    guidance: dict[str, Any] = {
        "resourceType": "GuidanceResponse",
        "moduleUri": IG_URL,
        "occurrenceDateTime": view.evaluated_at.astimezone(UTC).isoformat(timespec="seconds"),
    }
    if subject_id:
        guidance["subject"] = {"identifier": {"system": system, "value": subject_id}}
    if not view.found:
        guidance["status"] = "failure"
        guidance["note"] = [
            {"text": "No patient or case with these identifiers is known to this REMS (or visible to the caller)."}
        ]
        return {"resourceType": "Parameters", "parameter": [{"name": "rems-etasu", "resource": guidance}]}
    guidance["status"] = "success" if view.all_met else "data-required"
    clinical_notes = [
        f"{r.rule.value} {r.code.value}: {r.message} Next step: {r.next_step}" for r in view.clinical_reasons
    ] + [f"Clinical warning: {clinical.line(w)}" for w in view.warnings]
    if clinical_notes:  # CLINICAL_RULES.md: advice beside the ETASU, never one of them
        guidance["note"] = [{"text": text} for text in clinical_notes]
    outputs: list[dict[str, Any]] = [
        {
            "name": requirement.name,
            "resource": {
                "resourceType": "GuidanceResponse",
                "status": _status(requirement),
                "moduleUri": IG_URL,
                "note": [{"text": _note(requirement)}],
            },
        }
        for requirement in view.requirements
    ]
    number = view.case_number or case_number
    if number:
        outputs.append({"name": "case_number", "valueString": number})
    guidance["contained"] = [{"resourceType": "Parameters", "id": OUTPUT_ID, "parameter": outputs}]
    guidance["outputParameters"] = {"reference": f"#{OUTPUT_ID}"}
    return {"resourceType": "Parameters", "parameter": [{"name": "rems-etasu", "resource": guidance}]}
