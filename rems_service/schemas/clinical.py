"""Treatment courses, lab results and the treatment summary (CLINICAL_RULES.md)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from workflows.clinical_params import Regimen
from workflows.courses import CourseReason, CourseStatus
from workflows.labs import LOINC
from workflows.rules import Rule

from .common import RequestSchema, StrictBoolean, text

_REASONS = [r.value for r in CourseReason]


def _dose(required: bool = True) -> fields.Float:
    checks = validate.Range(min=0, min_inclusive=False, max=100)
    about = {"description": "Daily dose in mg (R-DOSE-1/2 advise on strengths and maximum)."}
    if required:
        return fields.Float(required=True, validate=checks, metadata=about)
    return fields.Float(load_default=None, allow_none=True, validate=checks, metadata=about)


def _lab_ids() -> fields.List:
    return fields.List(
        fields.UUID(),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={"description": "The patient's lab results behind the change (ids from POST /patients/{id}/labs)."},
    )


class CourseCreateSchema(RequestSchema):
    regimen = fields.Enum(Regimen, by_value=True, required=True)
    start_date = fields.Date(required=True)
    dose_mg = _dose()
    days_on = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "Default: the regimen's."},
    )
    cycle_length_days = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "Default: the regimen's."},
    )
    dose_every_days = fields.Integer(
        strict=True,
        load_default=1,
        validate=validate.Range(min=1, max=7),
        metadata={"description": "1 = daily, 2 = every 48 h (severe renal impairment, R-RENAL-1)."},
    )
    thromboprophylaxis = text(
        200, required=False, load_default=None, metadata={"description": "R-VTE-1, e.g. `aspirin 81 mg`."}
    )
    on_dialysis = StrictBoolean(load_default=False, metadata={"description": "R-RENAL-1's dialysis band."})
    weight_kg = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=500),
        metadata={
            "description": "Body weight: R-RENAL-1 estimates the clearance (Cockcroft-Gault) from serum creatinine."
        },
    )


class CourseHoldSchema(RequestSchema):
    reason_code = fields.String(required=True, validate=validate.OneOf(_REASONS))
    reason = text(500, required=False, load_default=None)
    lab_result_ids = _lab_ids()


class CourseResumeSchema(RequestSchema):
    dose_mg = _dose(required=False)
    reason_code = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(_REASONS))
    reason = text(500, required=False, load_default=None)
    lab_result_ids = _lab_ids()


class CourseDoseSchema(RequestSchema):
    dose_mg = _dose()
    reason_code = fields.String(required=True, validate=validate.OneOf(_REASONS))
    reason = text(500, required=False, load_default=None)
    lab_result_ids = _lab_ids()


class CourseStopSchema(RequestSchema):
    reason_code = fields.String(required=True, validate=validate.OneOf(_REASONS))
    reason = text(500, required=False, load_default=None)


class CourseReadQuerySchema(RequestSchema):
    authorization_number = text(
        40,
        required=False,
        load_default=None,
        metadata={
            "description": "A pharmacist reads the patient's course by presenting a valid authorization "
            "for the patient."
        },
    )


class CycleSchema(Schema):
    number = fields.Integer()
    day = fields.Integer()
    dosing_day = fields.Boolean()
    started = fields.Boolean()


class CourseEventSchema(Schema):
    id = fields.UUID()
    event = fields.String()
    at = fields.AwareDateTime()
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    reason_code = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    from_dose_mg = fields.Float(allow_none=True)
    to_dose_mg = fields.Float(allow_none=True)
    lab_result_ids = fields.List(fields.String())
    actor_user_id = fields.UUID(allow_none=True)


class HoldSchema(Schema):
    start = fields.String()
    end = fields.String(allow_none=True)


class CourseSchema(Schema):
    id = fields.UUID()
    patient_id = fields.UUID()
    prescriber_id = fields.UUID()
    regimen = fields.String()
    start_date = fields.Date()
    dose_mg = fields.Float()
    dose_every_days = fields.Integer()
    days_on = fields.Integer()
    cycle_length_days = fields.Integer()
    thromboprophylaxis = fields.String(allow_none=True)
    on_dialysis = fields.Boolean()
    weight_kg = fields.Float(allow_none=True)
    status = fields.String(metadata={"description": " | ".join(s.value for s in CourseStatus)})
    status_changed_at = fields.AwareDateTime()
    status_reason_code = fields.String(allow_none=True)
    status_reason = fields.String(allow_none=True)
    cycle = fields.Nested(CycleSchema)
    holds = fields.List(fields.Nested(HoldSchema))
    events = fields.List(fields.Nested(CourseEventSchema))


class CourseListSchema(Schema):
    items = fields.List(fields.Nested(CourseSchema))


class LabCreateSchema(RequestSchema):
    loinc = fields.String(
        required=True,
        validate=validate.Length(min=1, max=16),
        metadata={"description": f"One of {', '.join(sorted(LOINC))}; another code is a 422."},
    )
    value = fields.Raw(
        required=True,
        metadata={
            "description": "A number; for the qualitative pregnancy codes 2106-3 and 2118-8, `negative` or `positive`."
        },
    )
    unit = text(
        40,
        required=False,
        load_default=None,
        metadata={"description": "UCUM: `10*3/uL`, `/uL`, `g/dL`, `g/L`, `mg/(24.h)`, `mL/min`…"},
    )
    collected_at = fields.AwareDateTime(required=True, metadata={"description": "Not in the future."})
    reference_low = fields.Float(load_default=None, allow_none=True, metadata={"description": "In `unit`."})
    reference_high = fields.Float(load_default=None, allow_none=True, metadata={"description": "In `unit`."})
    source = text(200, required=False, load_default=None, metadata={"description": "The reporting lab or system."})
    sensitivity_miu_ml = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={"description": f"Pregnancy codes only: the test's sensitivity ({Rule.R_PREG_2.value})."},
    )


class LabQuerySchema(CourseReadQuerySchema):
    loinc = fields.String(load_default=None, validate=validate.Length(min=1, max=16))


class LabSchema(Schema):
    id = fields.UUID()
    patient_id = fields.UUID()
    loinc = fields.String()
    name = fields.String()
    kind = fields.String()
    collected_at = fields.AwareDateTime()
    value = fields.Raw()
    unit = fields.String(allow_none=True)
    canonical_value = fields.Float(allow_none=True)
    canonical_unit = fields.String(allow_none=True)
    reference_low = fields.Float(allow_none=True)
    reference_high = fields.Float(allow_none=True)
    source = fields.String(allow_none=True)
    recorded_at = fields.AwareDateTime(allow_none=True)
    critical_rules = fields.List(
        fields.String(), metadata={"description": "Hold thresholds the value crosses (R-CBC-2, R-CBC-3)."}
    )


class LabListSchema(Schema):
    items = fields.List(fields.Nested(LabSchema))


class TreatmentSummarySchema(Schema):
    """The patient's treatment for the portal: cycle calendar, holds and dose history, CBC
    series against the hold thresholds, M-protein trend with its IMWG response category."""

    patient_id = fields.UUID()
    rems_patient_id = fields.String()
    program_version = fields.String()
    course = fields.Nested(CourseSchema, allow_none=True)
    calendar = fields.List(fields.Dict())
    dose_history = fields.List(fields.Dict())
    holds = fields.List(fields.Dict())
    cbc = fields.Dict()
    m_protein = fields.Dict()
    warnings = fields.List(fields.Dict())
