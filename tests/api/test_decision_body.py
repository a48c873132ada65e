"""The Decision body a decision service encodes is the API's DecisionSchema, byte for byte.

The service writes the JSON text itself (the idempotency store keeps it, with no
callback into the API); these tests keep that text and the OpenAPI schema from
drifting apart, for each shape of Decision.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from rems_service.db.models import Authorization, DecisionRecord, Dispense
from rems_service.schemas.decisions import DecisionSchema
from rems_service.services.decisions import DecisionResult, encode
from workflows.authorizations import AuthorizationStatus
from workflows.dispenses import DispenseStatus
from workflows.patients import RiskCategory

NOW = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)


def _record(outcome: str, reasons: list[dict[str, str]]) -> DecisionRecord:
    return DecisionRecord(
        id=uuid.uuid4(),
        kind="dispense",
        outcome=outcome,
        reasons=reasons,
        evaluated_at=NOW,
        program_version="2020.1",
        snapshot={},
        audit_seq=42,
        created_at=NOW,
    )


def _authorization() -> Authorization:
    return Authorization(
        number="RA-AB12C-DE34F-GH56J",
        patient_id=uuid.uuid4(),
        prescriber_id=uuid.uuid4(),
        rems_patient_id="RP-ABCDE-12345",
        risk_category=RiskCategory.FRP_ADULT,
        days_supply=28,
        quantity=21,
        strength_mg=25.0,
        status=AuthorizationStatus.ISSUED,
        issued_at=NOW,
        expires_at=NOW + timedelta(days=7),
        status_changed_at=NOW,
        decision_id=uuid.uuid4(),
    )


def _dispense(auth: Authorization) -> Dispense:
    return Dispense(
        confirmation_number="RC-AB12C-DE34F-GH56J",
        authorization_id=auth.id,
        pharmacy_id=uuid.uuid4(),
        pharmacist_user_id=uuid.uuid4(),
        patient_id=auth.patient_id,
        rems_patient_id=auth.rems_patient_id,
        days_supply=28,
        quantity=21,
        status=DispenseStatus.CONFIRMED,
        confirmed_at=NOW,
        confirmation_expires_at=NOW.astimezone(timezone(timedelta(hours=2))) + timedelta(hours=24),
        status_changed_at=NOW,
        decision_id=uuid.uuid4(),
    )


def _schema_dump(record: DecisionRecord, auth: Authorization | None, dispense: Dispense | None) -> str:
    """What the API rendered before: the DecisionSchema dump of the same values."""
    body: dict[str, object] = {
        "id": record.id,
        "decision": record.outcome,
        "reasons": record.reasons,
        "evaluated_at": record.evaluated_at,
        "program_version": record.program_version,
        "audit_seq": record.audit_seq,
    }
    if auth is not None:
        body.update(authorization_number=auth.number, rems_patient_id=auth.rems_patient_id)
        if dispense is None:
            body.update(risk_category=auth.risk_category, days_supply=auth.days_supply, expires_at=auth.expires_at)
    if dispense is not None:
        body.update(
            confirmation_number=dispense.confirmation_number,
            confirmation_expires_at=dispense.confirmation_expires_at,
            days_supply=dispense.days_supply,
        )
    return DecisionSchema().dumps(body)


@pytest.mark.parametrize("shape", ["denied", "authorization approved", "dispense approved"])
def test_the_encoded_decision_is_the_schema_dump(shape):
    reasons = [
        # Recorded before reasons carried a next step: shown as recorded.
        {"code": "EARLY_REFILL", "rule": "R-DISP-3", "message": "Trop tôt — «refill» ≥ 7 days"},
        {
            "code": "EARLY_REFILL",
            "rule": "R-DISP-3",
            "message": "8 days of therapy remain",
            "next_step": "A refill is allowed from 2026-06-16 — «ask again»",
        },
    ]
    record = _record("denied" if shape == "denied" else "approved", reasons if shape == "denied" else [])
    auth = None if shape == "denied" else _authorization()
    dispense = _dispense(auth) if shape == "dispense approved" and auth else None
    assert encode(DecisionResult.of(record, auth, dispense)) == _schema_dump(record, auth, dispense)
