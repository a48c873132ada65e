"""Pharmacy registration and certification (API.md, Pharmacies)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates

from workflows.identifiers import ncpdp_problem

from .common import RequestSchema, must_be_true, text


class RepresentativeSchema(RequestSchema):
    name = text(200)
    email = fields.Email(required=True)


class PharmacyCreateSchema(RequestSchema):
    ncpdp_id = fields.String(required=True, metadata={"description": "7 digits."})
    name = text(200)
    authorized_representative = fields.Nested(RepresentativeSchema, required=True)

    @validates("ncpdp_id")
    def _valid_ncpdp(self, value: str, data_key: str) -> None:
        problem = ncpdp_problem(value)
        if problem:
            raise ValidationError(problem)


class PharmacyAttestationsSchema(RequestSchema):
    staff_trained = must_be_true()
    dispensing_procedures_in_place = must_be_true()
    records_available_for_audit = must_be_true()


class PharmacyCertifySchema(RequestSchema):
    attestations = fields.Nested(PharmacyAttestationsSchema, required=True)


class PharmacySchema(Schema):
    """A pharmacy as seen at the request's time: ``status`` is the effective one."""

    id = fields.UUID()
    ncpdp_id = fields.String()
    name = fields.String()
    authorized_representative = fields.Dict()
    status = fields.String(metadata={"description": "Effective status: 'expired' once certified_until has passed."})
    certified_at = fields.AwareDateTime(allow_none=True)
    certified_until = fields.AwareDateTime(allow_none=True)
    status_changed_at = fields.AwareDateTime()
    status_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
