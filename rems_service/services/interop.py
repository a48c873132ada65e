"""The reads the standard fronts need beyond the API's decisions (INTEROP.md): who the caller
is on the wire (its pharmacy's NCPDP ID, its NPI), a pharmacy's case for a patient (NCPDP
``REMSInitiationRequest``) and each requirement's state (FHIR ``$rems-etasu``, CDS Hooks).

Decisions themselves go through ``authorizations.request`` and ``dispenses.request``
like the API's. Every read here is an audit ``read`` entry naming its channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rems_service.db.models import Authorization, Patient
from rems_service.db.uow import UnitOfWork
from workflows.actors import Actor, UserRole
from workflows.advisories import Advice, advise, hold_reasons
from workflows.audit import Origin
from workflows.calendar import local_date
from workflows.dispenses import AuthorizationFacts
from workflows.program import Program, ProgramVersion
from workflows.reasons import Reason
from workflows.requirements import Requirement, RequirementsContext, case_reasons, requirement_states

from .audit_log import record_read
from .decisions import clinical_facts
from .errors import Forbidden
from .versions import version_at


def caller_ncpdp_id(uow: UnitOfWork, actor: Actor) -> str | None:
    """The NCPDP ID of a pharmacist's pharmacy (None for any other caller)."""
    if actor.role != UserRole.PHARMACIST.value:
        return None
    with uow:
        return uow.repo.pharmacy_ncpdp_id(actor.pharmacy_id)


def caller_npi(uow: UnitOfWork, actor: Actor) -> str | None:
    """A prescriber's NPI (None for any other caller)."""
    if actor.role != UserRole.PRESCRIBER.value:
        return None
    with uow:
        return uow.repo.prescriber_npi(actor.prescriber_id)


@dataclass(frozen=True)
class CaseView:
    """A pharmacy's case: open with the patient's open authorization, or closed with every
    reason; ``patient_found`` False when no patient has the REMS patient ID."""

    patient_found: bool
    authorization_number: str | None = None
    expires_at: datetime | None = None
    reasons: tuple[Reason, ...] = ()
    statuses: tuple[tuple[str, str], ...] = ()

    @property
    def open(self) -> bool:
        return self.patient_found and not self.reasons


def open_case(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    rems_patient_id: str,
    prescriber_npi: str | None,
    origin: Origin,
) -> CaseView:
    """Look the patient up for a pharmacy (no decision): the open authorization (issued,
    unexpired) when the patient may be dispensed to and the prescription's prescriber
    (``prescriber_npi``, when given) is the patient's. A treatment course the prescriber
    put on hold or stopped closes the case with R-CYCLE-3's reason (a dispense would be
    refused ``TREATMENT_ON_HOLD``). Recorded as a read."""
    version = version_at(program, now)  # nothing is answered without the rules in force
    with uow:
        repo = uow.repo
        patient = repo.find_patient_by_rems_id(rems_patient_id)
        view = CaseView(patient_found=False)
        if patient is not None:
            _prescriber_status, facts, _survey = repo.requirements_inputs(patient)
            npi = repo.prescriber_npi(patient.prescriber_id)
            auth = repo.newest_open_authorization(patient.id, now)
            reasons = case_reasons(facts, prescriber_npi is None or prescriber_npi == npi, auth is not None)
            clinical = repo.clinical_inputs(patient.id) if version.clinical is not None else None
            if clinical is not None:  # R-CYCLE-3: a held or stopped course closes the case too
                reasons += tuple(hold_reasons(clinical.facts))
            view = CaseView(
                patient_found=True,
                authorization_number=auth.number if auth is not None and not reasons else None,
                expires_at=auth.expires_at if auth is not None and not reasons else None,
                reasons=reasons,
                statuses=(("patient", facts.status.value),),
            )
        details = {
            **origin.as_details(),
            "rems_patient_id": "".join(rems_patient_id.split()).upper(),
            "case": "open" if view.open else "closed",
            "reasons": [r.code.value for r in view.reasons],
        }
        if view.authorization_number:
            details["authorization_number"] = view.authorization_number
        record_read(uow, actor, now, "ncpdp.rems-initiation", details)
        uow.commit()
        return view


@dataclass(frozen=True)
class RequirementsView:
    """Each requirement's state at ``evaluated_at``; ``found`` False when the patient (or the
    case number asked about) is unknown or not the caller's to see."""

    found: bool
    evaluated_at: datetime
    program_version: str
    rems_patient_id: str | None = None
    patient_id: str | None = None
    patient_status: str | None = None
    case_number: str | None = None
    requirements: tuple[Requirement, ...] = ()
    #: CLINICAL_RULES.md's warnings for the patient at ``evaluated_at``, as a Decision lists
    #: them (code, rule, severity, message, evidence); none for a patient without a course.
    warnings: tuple[dict[str, Any], ...] = ()
    #: The clinical refusals an authorization would meet now: R-CYCLE-3 (the course on hold
    #: or stopped) and R-ACK-1 (a critical warning, to be acknowledged in the request).
    clinical_reasons: tuple[Reason, ...] = ()

    @property
    def all_met(self) -> bool:
        return self.found and all(r.met for r in self.requirements)


def _visible(actor: Actor, patient: Patient, auth: Authorization | None, both_given: bool) -> bool:
    """Admins see every patient; a prescriber its own patients (and their authorizations); a
    pharmacist a patient named together with one of the patient's authorization numbers."""
    if actor.is_admin:
        return True
    if actor.role == UserRole.PRESCRIBER.value:
        return patient.prescriber_id == actor.prescriber_id and (
            auth is None or auth.prescriber_id == actor.prescriber_id
        )
    if actor.role == UserRole.PHARMACIST.value:
        return both_given and auth is not None and auth.patient_id == patient.id
    return False


def _clinical_advice(uow: UnitOfWork, patient: Patient, version: ProgramVersion, now: datetime, who: str) -> Advice:
    """The warnings and clinical refusals a decision about ``patient`` would carry at ``now``
    (the same pure ``advise`` the decisions call); nothing for a patient without a course or
    a program version without a ``clinical`` table. No request: R-CYCLE-2 (quantity) waits
    for one."""
    if version.clinical is None:
        return Advice((), ())
    facts = clinical_facts(uow.repo.clinical_inputs(patient.id), (), None, patient, local_date(now, version.tz))
    if facts is None:
        return Advice((), ())
    return advise(facts, None, version.clinical, version.tz, now, who)


def requirements(
    uow: UnitOfWork,
    actor: Actor,
    now: datetime,
    program: Program,
    *,
    rems_patient_id: str | None,
    case_number: str | None,
    origin: Origin,
    operation: str,
) -> RequirementsView:
    """Each requirement's state for a patient (by REMS patient ID and/or authorization number),
    computed by ``workflows.requirements`` at ``now``. Raises ``Forbidden`` for roles that may
    not ask; an unknown or invisible patient or case is ``found=False``. Recorded as a read
    (``operation`` names the front's operation)."""
    if actor.role not in (UserRole.PRESCRIBER.value, UserRole.PHARMACIST.value) and not actor.is_admin:
        raise Forbidden(f"The {actor.role} role may not read REMS requirements.")
    version = version_at(program, now)
    with uow:
        repo = uow.repo
        patient = repo.find_patient_by_rems_id(rems_patient_id) if rems_patient_id else None
        auth = repo.find_authorization(case_number) if case_number else None
        if patient is None and rems_patient_id is None and auth is not None:
            patient = repo.get(Patient, auth.patient_id)
        known = patient is not None and (case_number is None or auth is not None)
        both = bool(rems_patient_id and case_number)
        view = RequirementsView(found=False, evaluated_at=now, program_version=version.version)
        if known and patient is not None and _visible(actor, patient, auth, both):
            prescriber_status, facts, last_survey = repo.requirements_inputs(patient)
            auth_facts = None
            if auth is not None:
                holding = repo.holding_dispense(auth.id)
                auth_facts = AuthorizationFacts(
                    number=auth.number,
                    status=auth.status,
                    issued_at=auth.issued_at,
                    expires_at=auth.expires_at,
                    rems_patient_id=auth.rems_patient_id,
                    days_supply=auth.days_supply,
                    confirmation_expires_at=holding.confirmation_expires_at if holding else None,
                    quantity=auth.quantity,
                    confirmation_pharmacy_id=str(holding.pharmacy_id) if holding else None,
                )
            states = requirement_states(
                RequirementsContext(prescriber_status, facts, last_survey, auth_facts), version, now
            )
            who = "pharmacist" if actor.role == UserRole.PHARMACIST.value else "prescriber"
            advice = _clinical_advice(uow, patient, version, now, who)
            view = RequirementsView(
                found=True,
                evaluated_at=now,
                program_version=version.version,
                rems_patient_id=patient.rems_patient_id,
                patient_id=str(patient.id),
                patient_status=facts.status.value,
                case_number=auth.number if auth is not None else None,
                requirements=states,
                warnings=tuple(w.as_dict() for w in advice.warnings),
                clinical_reasons=advice.reasons,
            )
        details: dict[str, object] = {**origin.as_details(), "found": view.found}
        if view.rems_patient_id:
            details["rems_patient_id"] = view.rems_patient_id
        if view.case_number:
            details["authorization_number"] = view.case_number
        if view.found:
            details["outstanding"] = [r.name for r in view.requirements if not r.met]
            if view.warnings:  # by rule and severity only: never a lab value in the audit log
                details["warnings"] = [
                    {"code": w["code"], "rule": w["rule"], "severity": w["severity"]} for w in view.warnings
                ]
        record_read(uow, actor, now, operation, details)
        uow.commit()
        return view
