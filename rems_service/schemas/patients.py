"""Patient enrollment, pregnancy tests and surveys (API.md, Patients)."""

from __future__ import annotations

from enum import Enum

from marshmallow import Schema, fields, validate

from workflows.patients import FnrpReason, MenstrualCycle, PatientStatus, RiskCategory
from workflows.rules import Rule
from workflows.testing import PregnancyResult

from .common import RequestSchema, StrictBoolean, text
from .decisions import DecisionReasonSchema


def _values(enum: type[Enum]) -> list[str]:
    return [e.value for e in enum]


class PatientEnrollSchema(RequestSchema):
    first_name = text(100)
    last_name = text(100)
    date_of_birth = fields.Date(required=True)
    risk_category = fields.String(required=True, validate=validate.OneOf(_values(RiskCategory)))
    menstrual_cycle = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(_values(MenstrualCycle)),
        metadata={"description": f"Required for FRP categories ({Rule.R_PREG_3.value})."},
    )
    fnrp_reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(_values(FnrpReason)),
        metadata={
            "description": f"Required for FNRP categories ({Rule.R_CAT_2.value}): why she can not get pregnant. "
            "Infertility alone does not exempt."
        },
    )
    guardian_name = text(
        200,
        required=False,
        load_default=None,
        allow_none=True,
        metadata={
            "description": f"Required for a patient under the program's adult age (`adult_age_years`; "
            f"{Rule.R_PAT_1.value})."
        },
    )
    ppaf_signed = StrictBoolean(required=True)
    counseling_completed = StrictBoolean(required=True)


class FirstAuthorizationWindowSchema(Schema):
    """R-PREG-1 as calendar dates in the program's time zone."""

    first_test_on = fields.Date(
        allow_none=True,
        metadata={
            "description": "The collection date of the negative test that counts as the first of the two "
            f"({Rule.R_PREG_1.value}); null when none does yet: collect one first."
        },
    )
    authorize_from = fields.Date(metadata={"description": "The first day the first authorization is possible."})
    authorize_until = fields.Date(metadata={"description": "The last day of that window."})
    second_test_from = fields.Date(
        metadata={"description": "The earliest collection date of the second negative test for that window."}
    )
    second_test_within_hours = fields.Integer(
        metadata={"description": "The second test must be collected within these hours before the authorization."}
    )


class PregnancyTestingStatusSchema(Schema):
    state = fields.String(metadata={"description": "not_required | current | due | positive"})
    next_test_due_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When the newest negative test stops counting."}
    )
    next_test_due_on = fields.Date(
        allow_none=True,
        metadata={
            "description": "The last day (program zone) to collect the next test and stay current; today when "
            "testing is due now; null when no test is required."
        },
    )
    interval_days = fields.Integer(allow_none=True)
    reasons = fields.List(fields.Nested(DecisionReasonSchema))
    first_authorization = fields.Nested(
        FirstAuthorizationWindowSchema,
        allow_none=True,
        metadata={"description": "Before therapy starts (FRP): the first authorization's testing windows as dates."},
    )


class SurveyStatusSchema(Schema):
    last_completed_at = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": f"The newest complete survey ({Rule.R_SURV_3.value}); incomplete ones do not count."},
    )
    next_due_at = fields.AwareDateTime(allow_none=True, metadata={"description": "When that survey stops counting."})
    next_due_on = fields.Date(
        allow_none=True,
        metadata={"description": "The last day (program zone) to complete the next survey; today when one is due now."},
    )
    current = fields.Boolean()
    reasons = fields.List(fields.Nested(DecisionReasonSchema))


class PatientSchema(Schema):
    id = fields.UUID()
    rems_patient_id = fields.String()
    prescriber_id = fields.UUID()
    first_name = fields.String()
    last_name = fields.String()
    date_of_birth = fields.Date()
    risk_category = fields.Enum(RiskCategory, by_value=True)
    menstrual_cycle = fields.Enum(MenstrualCycle, by_value=True, allow_none=True)
    fnrp_reason = fields.Enum(FnrpReason, by_value=True, allow_none=True)
    guardian_name = fields.String(allow_none=True)
    status = fields.Enum(PatientStatus, by_value=True)
    status_changed_at = fields.AwareDateTime()
    status_reason = fields.String(allow_none=True)
    therapy_started_at = fields.AwareDateTime(allow_none=True)
    enrolled_at = fields.AwareDateTime()


class PatientDetailSchema(PatientSchema):
    pregnancy_testing = fields.Nested(PregnancyTestingStatusSchema)
    survey = fields.Nested(SurveyStatusSchema)
    program_version = fields.String()


class PregnancyTestCreateSchema(RequestSchema):
    collected_at = fields.AwareDateTime(required=True)
    result = fields.String(required=True, validate=validate.OneOf(_values(PregnancyResult)))
    sensitivity_miu_ml = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=1),
        metadata={
            "description": "Counts only up to the program's maximum (`test_max_sensitivity_miu_ml`; "
            f"{Rule.R_PREG_2.value}); a higher value is a 422."
        },
    )


class PregnancyTestSchema(Schema):
    id = fields.UUID()
    patient_id = fields.UUID()
    collected_at = fields.AwareDateTime()
    result = fields.Enum(PregnancyResult, by_value=True)
    sensitivity_miu_ml = fields.Integer()
    recorded_at = fields.AwareDateTime()
    patient_status = fields.String()


class SurveyAnswersSchema(RequestSchema):
    """Every question of the patient's category must be answered true or false
    (R-SURV-3); an unanswered one is a 422 naming it."""

    missed_period = StrictBoolean(load_default=None, allow_none=True)
    unprotected_intercourse = StrictBoolean(load_default=None, allow_none=True)
    missed_contraception = StrictBoolean(load_default=None, allow_none=True)
    shared_capsules = StrictBoolean(load_default=None, allow_none=True)
    donated_blood = StrictBoolean(load_default=None, allow_none=True)


class SurveyCreateSchema(RequestSchema):
    completed_at = fields.AwareDateTime(required=True)
    answers = fields.Nested(SurveyAnswersSchema, required=True)


class SurveySchema(Schema):
    id = fields.UUID()
    patient_id = fields.UUID()
    completed_at = fields.AwareDateTime()
    answers = fields.Dict()
    noncompliance = fields.List(fields.String())
    recorded_at = fields.AwareDateTime()
    patient_status = fields.String()
