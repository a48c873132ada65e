"""Authorization and dispense requests, and the Decision they answer with (API.md)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from workflows.authorizations import AuthorizationStatus
from workflows.dispenses import DispenseStatus
from workflows.patients import RiskCategory
from workflows.rules import Rule

from .common import RequestSchema, StrictBoolean, text

#: Lenalidomide capsule strengths on the market (mg): a product fact, not a program parameter.
STRENGTHS_MG = (2.5, 5.0, 10.0, 15.0, 20.0, 25.0)


def _days_supply() -> fields.Integer:
    # Beyond the program's maximum is a *denial* with DAYS_SUPPLY_EXCEEDED (Rule.R_AUTH_2,
    # Rule.R_DISP_4), not a 422; only nonsense is refused here.
    return fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=366))


def _quantity() -> fields.Integer:
    return fields.Integer(
        strict=True, required=True, validate=validate.Range(min=1, max=1000), metadata={"description": "Capsules."}
    )


class PrescriberSurveySchema(RequestSchema):
    counseled_on_risks = StrictBoolean(
        required=True, metadata={"description": f"{Rule.R_PRES_2.value}. `false` is a denial, not an error."}
    )
    contraception_confirmed = StrictBoolean(
        load_default=None,
        allow_none=True,
        metadata={
            "description": f"Required `true` for FRP ({Rule.R_CONTRA_1.value}) and male ({Rule.R_CONTRA_2.value}) "
            "patients; else a denial."
        },
    )


class AcknowledgementSchema(RequestSchema):
    """R-ACK-1: proceeding despite a critical warning, and why."""

    rule = fields.String(
        required=True,
        validate=validate.OneOf([r.value for r in Rule]),
        metadata={"description": "The rule ID of the critical warning acknowledged (e.g. `R-CBC-2`)."},
    )
    reason = text(1000, metadata={"description": "Why the request goes ahead despite the warning."})
    prescriber_contacted_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "When the pharmacist reached the prescriber (not in the future)."},
    )


def _acknowledgements() -> fields.List:
    return fields.List(
        fields.Nested(AcknowledgementSchema),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={
            "description": f"{Rule.R_ACK_1.value}: one per critical warning the request goes ahead despite; "
            "recorded with who and when in the decision's audit entry. Without it a critical warning is a "
            "denial with `CLINICAL_ALERT_UNACKNOWLEDGED`."
        },
    )


class AuthorizationCreateSchema(RequestSchema):
    patient_id = fields.UUID(required=True)
    days_supply = _days_supply()
    quantity = _quantity()
    strength_mg = fields.Float(
        required=True, validate=validate.OneOf(STRENGTHS_MG), metadata={"description": "Capsule strength."}
    )
    prescriber_survey = fields.Nested(PrescriberSurveySchema, required=True)
    acknowledgements = _acknowledgements()


class CounselingSchema(RequestSchema):
    medication_guide_provided = StrictBoolean(required=True)
    checklist_completed = StrictBoolean(required=True)


class DispenseCreateSchema(RequestSchema):
    authorization_number = text(40)
    rems_patient_id = text(20)
    days_supply = _days_supply()
    quantity = _quantity()
    counseling = fields.Nested(
        CounselingSchema, required=True, metadata={"description": f"{Rule.R_COUNSEL_1.value}; `false` is a denial."}
    )
    acknowledgements = _acknowledgements()


class DecisionReasonSchema(Schema):
    code = fields.String(metadata={"description": 'A stable reason code (REMS rules, "Reason codes").'})
    rule = fields.String(metadata={"description": "The rule ID the reason cites."})
    message = fields.String(metadata={"description": "What failed."})
    next_step = fields.String(
        metadata={
            "description": "What a person can do next, computed from the rule and the facts: dates (the earliest "
            "refill, the window of the next pregnancy test), numbers, who must act, and the request field to fix "
            "where there is one. Absent only from decisions recorded before next steps existed."
        }
    )


class EvidenceSchema(Schema):
    loinc = fields.String()
    value = fields.Float(metadata={"description": "In the code's canonical unit."})
    unit = fields.String()
    collected_at = fields.String(metadata={"description": "ISO 8601, UTC."})


class WarningSchema(Schema):
    """A clinical advisory (CLINICAL_RULES.md): never a denial by itself."""

    code = fields.String(
        metadata={"description": "What the advisory is about (e.g. `PLATELETS_BELOW_HOLD_THRESHOLD`)."}
    )
    rule = fields.String(metadata={"description": "The rule ID of CLINICAL_RULES.md."})
    severity = fields.String(metadata={"description": "info | caution | critical (critical needs an acknowledgement)."})
    message = fields.String()
    evidence = fields.List(fields.Nested(EvidenceSchema), metadata={"description": "The lab results behind it."})


class DecisionSchema(Schema):
    """A recorded decision. Approved authorizations add ``authorization_number``,
    ``risk_category`` and ``expires_at``; approved dispenses add
    ``confirmation_number`` and ``confirmation_expires_at``."""

    id = fields.UUID()
    decision = fields.String(metadata={"description": "approved | denied"})
    reasons = fields.List(fields.Nested(DecisionReasonSchema))
    warnings = fields.List(
        fields.Nested(WarningSchema),
        metadata={
            "description": "Clinical advisories with their evidence; present only for a patient with a "
            "treatment course."
        },
    )
    evaluated_at = fields.AwareDateTime()
    program_version = fields.String()
    audit_seq = fields.Integer()
    authorization_number = fields.String()
    risk_category = fields.Enum(RiskCategory, by_value=True)
    rems_patient_id = fields.String()
    days_supply = fields.Integer()
    expires_at = fields.AwareDateTime()
    confirmation_number = fields.String()
    confirmation_expires_at = fields.AwareDateTime()


class AuthorizationSchema(Schema):
    number = fields.String()
    status = fields.Enum(AuthorizationStatus, by_value=True)
    rems_patient_id = fields.String()
    risk_category = fields.Enum(RiskCategory, by_value=True)
    prescriber_id = fields.UUID()
    days_supply = fields.Integer()
    quantity = fields.Integer()
    strength_mg = fields.Float()
    issued_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()
    status_changed_at = fields.AwareDateTime()
    status_reason = fields.String(allow_none=True)


class DispenseSchema(Schema):
    confirmation_number = fields.String()
    status = fields.Enum(DispenseStatus, by_value=True)
    authorization_number = fields.String()
    rems_patient_id = fields.String()
    pharmacy_id = fields.UUID()
    days_supply = fields.Integer()
    quantity = fields.Integer()
    confirmed_at = fields.AwareDateTime()
    confirmation_expires_at = fields.AwareDateTime()
    dispensed_at = fields.AwareDateTime(allow_none=True)
    status_changed_at = fields.AwareDateTime()
    status_reason = fields.String(allow_none=True)
