"""NCPDP SCRIPT REMS transactions: ``POST /ncpdp/script`` (INTEROP.md).

``REMSInitiationRequest`` looks the patient's case up, ``REMSRequest`` is the dispense
decision of ``POST /api/v1/dispenses`` and ``RxFill`` the hand-over (complete) or its
undoing (reverse). Each: parse and validate the message, call the same service the
API calls, render the reply. Element names are matched in any case on input and
written in proper case on output.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app
from flask import request as flask_request
from flask_limiter import RateLimitExceeded
from lxml import etree
from lxml.builder import E
from marshmallow import ValidationError

from rems_service import ratelimit
from rems_service.context import ctx
from rems_service.schemas.decisions import AcknowledgementSchema
from rems_service.services import decisions, dispenses, interop
from rems_service.services.decisions import DecisionResult
from rems_service.services.errors import ServiceError
from rems_service.services.versions import version_at
from workflows.actors import UserRole
from workflows.audit import Origin
from workflows.program import ProgramVersion

from . import ncpdp_codes, xml
from .common import MAX_BODY_BYTES, BodyTooLarge, authenticate, origin, read_body, unexpected_status

blp = ratelimit.limit_front(Blueprint("ncpdp", __name__, url_prefix="/ncpdp"))

CHANNEL = "ncpdp"
MIME = "application/xml"
ACCEPTED_TYPES = frozenset({"application/xml", "text/xml"})
#: The version attributes of ``Message`` (echoed), in proper case, and their default.
VERSION_ATTRIBUTES = ("DatatypesVersion", "TransportVersion", "TransactionVersion", "StructuresVersion", "ECLVersion")
DEFAULT_VERSION = "20170715"
#: ``Error/Code`` 900: transaction rejected.
REJECTED = "900"
#: ``Error/DescriptionCode`` (our reading): 008 the sender or an identifier could not be
#: matched (401, 403, 404); 1000 anything else that stops the message being processed.
CANNOT_IDENTIFY = "008"
NOT_PROCESSED = "1000"
#: The qualifier of an NDC in ``DrugCoded/ProductCode``.
NDC_QUALIFIER = "ND"
MESSAGE_TYPES = ("remsinitiationrequest", "remsrequest", "rxfill")
#: A REMSRequest's idempotency key is its MessageID under this prefix (one namespace per front).
KEY_PREFIX = "ncpdp:"


class Refused(Exception):
    """The message cannot be processed: an ``Error`` reply with ``status``."""

    def __init__(self, status: int, description: str, description_code: str = NOT_PROCESSED):
        super().__init__(description)
        self.status = status
        self.description = description
        self.description_code = description_code


@dataclass(frozen=True)
class Envelope:
    """What the reply echoes from the request: the version attributes and the header."""

    versions: dict[str, str]
    to: etree._Element | None = None
    sender: etree._Element | None = None
    message_id: str | None = None

    @classmethod
    def of(cls, root: etree._Element | None) -> Envelope:
        if root is None:
            return cls(dict.fromkeys(VERSION_ATTRIBUTES, DEFAULT_VERSION))
        versions = {}
        for proper in VERSION_ATTRIBUTES:
            value = xml.attribute(root, proper)
            versions[proper] = value if value else DEFAULT_VERSION
        header = xml.child(root, "Header")
        return cls(
            versions=versions,
            to=xml.child(header, "To"),
            sender=xml.child(header, "From"),
            message_id=xml.text(header, "MessageID"),
        )

    def message(self, body_child: etree._Element) -> etree._Element:
        """The reply ``Message``: ``To`` and ``From`` swapped, a new ``MessageID``,
        ``RelatesToMessageID`` the request's, ``SentTime`` now."""
        header = E.Header(
            _party("To", self.sender),
            _party("From", self.to),
            E.MessageID(uuid.uuid4().hex),
        )
        if self.message_id:
            header.append(E.RelatesToMessageID(self.message_id))
        header.append(E.SentTime(_datetime(datetime.now(UTC))))
        root = E.Message(header, E.Body(body_child))
        root.set("TransactionDomain", "SCRIPT")
        for key, value in self.versions.items():
            root.set(key, value)
        return root


def _party(tag: str, source: etree._Element | None) -> etree._Element:
    element = etree.Element(tag)
    if source is not None:
        element.text = (source.text or "").strip()
        qualifier = xml.attribute(source, "Qualifier")
        if qualifier:
            element.set("Qualifier", qualifier)
    return element


def _datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _reply(envelope: Envelope, body_child: etree._Element, status: int = 200) -> Response:
    return current_app.response_class(xml.serialize(envelope.message(body_child)), status=status, mimetype=MIME)


def _error(envelope: Envelope, refused: Refused) -> Response:
    body = E.Error(E.Code(REJECTED), E.DescriptionCode(refused.description_code), E.Description(refused.description))
    return _reply(envelope, body, refused.status)


@blp.route("/script", methods=["POST"])
def script() -> Response:
    """One NCPDP SCRIPT message in, its reply out (INTEROP.md)."""
    envelope = Envelope.of(None)
    try:
        actor = authenticate()
        if actor is None:
            raise Refused(401, "A valid bearer token is required (Authorization: Bearer <token>).", CANNOT_IDENTIFY)
        body = read_body()
        if flask_request.mimetype not in ACCEPTED_TYPES:
            raise Refused(415, "Content-Type must be application/xml or text/xml.")
        try:
            root = xml.parse(body)
        except xml.MalformedXml as exc:
            raise Refused(400, str(exc)) from None
        if xml.name(root) != "message":
            raise Refused(400, "The root element must be Message.")
        envelope = Envelope.of(root)
        if envelope.message_id is None:
            raise Refused(400, "Message/Header/MessageID is missing.")
        kinds = xml.children(xml.child(root, "Body"))
        if len(kinds) != 1:
            raise Refused(400, "Message/Body must hold exactly one message.")
        message = kinds[0]
        kind = xml.name(message)
        if kind not in MESSAGE_TYPES:
            raise Refused(
                400,
                f"Message/Body/{etree.QName(message.tag).localname} is not a message type this service answers "
                "(REMSInitiationRequest, REMSRequest, RxFill).",
            )
        if actor.role != UserRole.PHARMACIST.value:
            raise Refused(403, "NCPDP SCRIPT messages need a pharmacist's token.", CANNOT_IDENTIFY)
        _check_pharmacy(message)
        handler = _HANDLERS[kind]
        return _reply(envelope, handler(message, origin(CHANNEL, body), envelope.message_id))
    except BodyTooLarge:
        return _error(envelope, Refused(413, f"The body is larger than {MAX_BODY_BYTES // 1024} KiB."))
    except Refused as refused:
        return _error(envelope, refused)
    except ServiceError as exc:
        code = CANNOT_IDENTIFY if exc.status in (401, 403, 404) else NOT_PROCESSED
        return _error(envelope, Refused(exc.status, exc.message, code))


@blp.errorhandler(RateLimitExceeded)
def _too_many(exc: RateLimitExceeded) -> Response:
    """A rate limit (``rems_service.ratelimit``): an ``Error`` message, HTTP 429 with ``Retry-After``."""
    return _error(Envelope.of(None), Refused(429, ratelimit.refusal(exc)))


@blp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    """Anything raised outside the view's own handling (the clock header, the database)
    is still an ``Error`` message."""
    status, description = unexpected_status(exc)
    code = CANNOT_IDENTIFY if status in (401, 403, 404) else NOT_PROCESSED
    return _error(Envelope.of(None), Refused(status, description, code))


def _check_pharmacy(message: etree._Element) -> None:
    """``Pharmacy/Identification/NCPDPID`` must be the caller's pharmacy (403 otherwise)."""
    c = ctx()
    stated = xml.text(message, "Pharmacy/Identification/NCPDPID")
    if stated is None:
        raise Refused(400, "Pharmacy/Identification/NCPDPID is missing.")
    if stated != interop.caller_ncpdp_id(c.uow(), c.actor):
        raise Refused(
            403, "Pharmacy/Identification/NCPDPID is not the NCPDP ID of the caller's pharmacy.", CANNOT_IDENTIFY
        )


def _required(message: etree._Element, steps: str) -> str:
    value = xml.text(message, steps)
    if value is None:
        raise Refused(400, f"{steps} is missing.")
    return value


def _count(message: etree._Element, steps: str, maximum: int) -> int:
    value = _required(message, steps)
    try:
        number = int(float(value)) if float(value).is_integer() else -1
    except ValueError:
        number = -1
    if not 1 <= number <= maximum:
        raise Refused(400, f"{steps} must be a whole number from 1 to {maximum}, got {value!r}.")
    return number


def _version() -> ProgramVersion:
    c = ctx()
    return version_at(c.program, c.now)


def _covered(drug: etree._Element | None, what: str) -> bool:
    """Whether ``.../DrugCoded`` names a product the program covers: an NDC
    (``ProductCode/Code``, qualifier ``ND``) or an RxNorm code (``DrugDBCode/Code``).
    A message naming no drug is refused (400)."""
    products = _version().products
    ndc, qualifier = xml.text(drug, "ProductCode/Code"), xml.text(drug, "ProductCode/Qualifier")
    rxnorm = xml.text(drug, "DrugDBCode/Code")
    if ndc is None and rxnorm is None:
        raise Refused(400, f"{what}/DrugCoded/ProductCode/Code or {what}/DrugCoded/DrugDBCode/Code is missing.")
    if ndc is not None and (qualifier is None or qualifier.upper() == NDC_QUALIFIER) and products.covers_ndc(ndc):
        return True
    return rxnorm is not None and products.covers_rxnorm(rxnorm)


_NOT_COVERED_NOTE = "The drug is not a product the Lenalidomide REMS covers; this program cannot answer for it."


def _initiation(message: etree._Element, where: Origin, _message_id: str) -> etree._Element:
    """``REMSInitiationRequest`` → ``REMSInitiationResponse``: Open with the patient's open
    authorization number, or Closed with one reason code and every reason."""
    c = ctx()
    rems_patient_id = _required(message, "Patient/HumanPatient/Identification/REMSPatientID")
    npi = xml.text(message, "Prescriber/NonVeterinarian/Identification/NPI")
    if not _covered(xml.path(message, "MedicationPrescribed/DrugCoded"), "MedicationPrescribed"):
        return E.REMSInitiationResponse(
            E.Response(
                E.ResponseStatus(E.Closed(E.ReasonCode(ncpdp_codes.PROGRAM_ERROR), E.REMSNote(_NOT_COVERED_NOTE)))
            )
        )
    case = interop.open_case(c.uow(), c.actor, c.now, c.program, rems_patient_id, npi, where)
    if case.open:
        assert case.authorization_number is not None and case.expires_at is not None
        status = E.Open(
            E.REMSCaseID(case.authorization_number), E.DeadlineForReply(E.DateTime(_datetime(case.expires_at)))
        )
    elif not case.patient_found:
        status = E.Closed(
            E.ReasonCode(ncpdp_codes.PATIENT_UNMET),
            E.REMSNote(f"No patient enrolled in the program has REMS patient ID {rems_patient_id}."),
        )
    else:
        reasons = [r.as_dict() for r in case.reasons]
        statuses = dict(case.statuses)
        code = ncpdp_codes.choose(ncpdp_codes.ncpdp_code(r["code"], statuses) for r in reasons)
        status = E.Closed(E.ReasonCode(code), E.REMSNote(ncpdp_codes.note(reasons)))
    return E.REMSInitiationResponse(E.Response(E.ResponseStatus(status)))


def _attested(message: etree._Element, element: str) -> bool:
    """``Y`` or ``N`` (absent: not attested); anything else is refused."""
    steps = f"Request/SolicitedModel/REMSAttestation/{element}"
    value = xml.text(message, steps)
    if value is None:
        return False
    if value.upper() not in ("Y", "N"):
        raise Refused(400, f"{steps} must be Y or N, got {value!r}.")
    return value.upper() == "Y"


#: ``Request/SolicitedModel/REMSAcknowledgement`` (our reading): R-ACK-1 over NCPDP.
ACKNOWLEDGEMENT = "Request/SolicitedModel/REMSAcknowledgement"
ACKNOWLEDGEMENT_FIELDS = {
    "ruleid": "rule",
    "reason": "reason",
    "prescribercontacteddatetime": "prescriber_contacted_at",
}
MAX_ACKNOWLEDGEMENTS = 20


def _acknowledgements(message: etree._Element) -> list[dict[str, Any]]:
    """The pharmacist's R-ACK-1 acknowledgements: each ``REMSAcknowledgement`` child of
    ``SolicitedModel`` with ``RuleID``, ``Reason`` and optionally ``PrescriberContactedDateTime``,
    validated by the API's own schema (400 naming the element otherwise)."""
    model = xml.path(message, "Request/SolicitedModel")
    found = [e for e in xml.children(model) if xml.name(e) == "remsacknowledgement"]
    if len(found) > MAX_ACKNOWLEDGEMENTS:
        raise Refused(400, f"{ACKNOWLEDGEMENT}: at most {MAX_ACKNOWLEDGEMENTS} acknowledgements.")
    out = []
    for i, element in enumerate(found, start=1):
        raw: dict[str, Any] = {}
        for item in xml.children(element):
            key = ACKNOWLEDGEMENT_FIELDS.get(xml.name(item))
            if key is None:
                raise Refused(
                    400, f"{ACKNOWLEDGEMENT}[{i}]/{etree.QName(item.tag).localname} is not an element it has."
                )
            raw[key] = (item.text or "").strip()
        try:
            out.append(AcknowledgementSchema().load(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"{_ACK_ELEMENTS.get(str(field), str(field))}: {' '.join(map(str, msgs))}"
                for field, msgs in sorted(exc.normalized_messages().items())
            )
            raise Refused(400, f"{ACKNOWLEDGEMENT}[{i}]: {problems}") from None
    return out


_ACK_ELEMENTS = {"rule": "RuleID", "reason": "Reason", "prescriber_contacted_at": "PrescriberContactedDateTime"}


def _request(message: etree._Element, where: Origin, message_id: str) -> etree._Element:
    """``REMSRequest`` → ``REMSResponse``: the dispense decision of ``POST /dispenses``.

    The ``MessageID`` is the request's idempotency key (scoped to the pharmacy): a
    retransmitted message is answered with the first decision, which is not made again;
    the same ``MessageID`` on another message is an ``Error`` (422)."""
    c = ctx()
    case_id = _required(message, "Request/SolicitedModel/REMSCaseID")
    rems_patient_id = _required(message, "Patient/HumanPatient/Identification/REMSPatientID")
    quantity = _count(message, "MedicationPrescribed/Quantity/Value", 1000)
    days_supply = _count(message, "MedicationPrescribed/DaysSupply", 366)
    counseling = {
        "medication_guide_provided": _attested(message, "MedicationGuideProvided"),
        "checklist_completed": _attested(message, "CounselingChecklistCompleted"),
    }
    acknowledgements = _acknowledgements(message)
    if len(case_id) > 40 or len(rems_patient_id) > 20:
        raise Refused(400, "Request/SolicitedModel/REMSCaseID or REMSPatientID is too long.")
    if not _covered(xml.path(message, "MedicationPrescribed/DrugCoded"), "MedicationPrescribed"):
        return E.REMSResponse(
            E.Response(
                E.ResponseStatus(
                    E.Denied(
                        E.REMSCaseID(case_id),
                        E.DeniedReasonCode(ncpdp_codes.PROGRAM_ERROR),
                        E.REMSNote(_NOT_COVERED_NOTE),
                    )
                )
            )
        )
    command = dispenses.command(
        authorization_number=case_id,
        rems_patient_id=rems_patient_id,
        days_supply=days_supply,
        quantity=quantity,
        counseling=counseling,
    )
    fields = {
        "message": "REMSRequest",
        "authorization_number": case_id,
        "rems_patient_id": rems_patient_id,
        "days_supply": days_supply,
        "quantity": quantity,
        "counseling": counseling,
    }
    if acknowledgements:
        fields["acknowledgements"] = [
            {**a, "prescriber_contacted_at": _datetime(a["prescriber_contacted_at"])}
            if a.get("prescriber_contacted_at")
            else a
            for a in acknowledgements
        ]
    answer = dispenses.request(
        c.uow,
        c.actor,
        c.now,
        c.program,
        command,
        idempotency_key=f"{KEY_PREFIX}{message_id}",
        request_body=fields,
        origin=where,
        acknowledgements_sent=acknowledgements,
    )
    result = answer.result if answer.result is not None else decisions.replayed_result(c.uow(), answer.body)
    return E.REMSResponse(E.Response(E.ResponseStatus(_decision(result, case_id))))


def _decision(result: DecisionResult, case_id: str) -> etree._Element:
    """Approved or Denied; the decision's clinical warnings (CLINICAL_RULES.md) travel in
    ``REMSNote`` after the reasons, and in an approval's own ``REMSNote`` (our reading)."""
    if result.approved:
        assert result.confirmation_number is not None and result.confirmation_expires_at is not None
        approved = E.Approved(
            E.REMSCaseID(result.authorization_number or case_id),
            E.REMSAuthorizationNumber(result.confirmation_number),
            E.AuthorizationPeriod(
                E.EffectiveDate(E.DateTime(_datetime(result.evaluated_at))),
                E.ExpirationDate(E.DateTime(_datetime(result.confirmation_expires_at))),
            ),
        )
        if result.warnings:
            approved.append(E.REMSNote(ncpdp_codes.note((), result.warnings)))
        return approved
    statuses = dict(result.statuses)
    code = ncpdp_codes.choose(ncpdp_codes.ncpdp_code(r["code"], statuses) for r in result.reasons)
    return E.Denied(
        E.REMSCaseID(case_id),
        E.DeniedReasonCode(code),
        E.REMSNote(ncpdp_codes.note(result.reasons, result.warnings)),
    )


def _fill(message: etree._Element, where: Origin, _message_id: str) -> etree._Element:
    """``RxFill`` → ``Status`` 000: ``Dispensed`` completes the hand-over, ``NotDispensed`` or
    ``Transferred`` reverses it; ``PartiallyDispensed`` is refused (whole fills only)."""
    c = ctx()
    states = xml.children(xml.child(message, "FillStatus"))
    if len(states) != 1:
        raise Refused(400, "FillStatus must hold exactly one of Dispensed, NotDispensed, Transferred.")
    state = xml.name(states[0])
    number = _required(message, "MedicationDispensed/REMSAuthorizationNumber")
    drug = xml.path(message, "MedicationDispensed/DrugCoded")
    if drug is not None and not _covered(drug, "MedicationDispensed"):
        raise Refused(422, "MedicationDispensed/DrugCoded is not a product the Lenalidomide REMS covers.")
    if state == "partiallydispensed":
        raise Refused(422, "FillStatus/PartiallyDispensed is refused: the program dispenses whole fills only.")
    if state == "dispensed":
        view = dispenses.complete(c.uow(), c.actor, c.now, c.program, number, origin=where)
        description = f"Dispensed: hand-over of {view.dispense.confirmation_number} recorded."
    elif state in ("notdispensed", "transferred"):
        reason = "not dispensed (NCPDP RxFill)" if state == "notdispensed" else "transferred (NCPDP RxFill)"
        view = dispenses.reverse(c.uow(), c.actor, c.now, c.program, number, reason, origin=where)
        description = f"Reversed: confirmation {view.dispense.confirmation_number} released ({reason})."
    else:
        raise Refused(400, f"FillStatus/{etree.QName(states[0].tag).localname} is not a fill status.")
    return E.Status(E.Code("000"), E.Description(description))


_HANDLERS: dict[str, Callable[[etree._Element, Origin, str], Any]] = {
    "remsinitiationrequest": _initiation,
    "remsrequest": _request,
    "rxfill": _fill,
}
