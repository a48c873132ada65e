"""Prescriber registration and certification (API.md, Prescribers)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates

from workflows.identifiers import npi_problem
from workflows.participants import PrescriberStatus

from .common import RequestSchema, must_be_true, text


class PrescriberCreateSchema(RequestSchema):
    npi = fields.String(required=True, metadata={"description": "10 digits with a valid check digit."})
    first_name = text(100)
    last_name = text(100)
    email = fields.Email(load_default=None, allow_none=True)

    @validates("npi")
    def _valid_npi(self, value: str, data_key: str) -> None:
        problem = npi_problem(value)
        if problem:
            raise ValidationError(problem)


class PrescriberAttestationsSchema(RequestSchema):
    reviewed_prescribing_information = must_be_true()
    completed_education = must_be_true()
    agrees_to_counsel_patients = must_be_true()
    agrees_to_report_pregnancies = must_be_true()


class PrescriberCertifySchema(RequestSchema):
    attestations = fields.Nested(PrescriberAttestationsSchema, required=True)


class PrescriberSchema(Schema):
    id = fields.UUID()
    npi = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    email = fields.String(allow_none=True)
    status = fields.Enum(PrescriberStatus, by_value=True)
    certified_at = fields.AwareDateTime(allow_none=True)
    status_changed_at = fields.AwareDateTime()
    status_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
