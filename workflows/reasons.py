"""Reasons a decision or a check gives: a stable code, the rule ID, a message."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .rules import Rule


class Code(str, Enum):
    """The stable reason codes of REMS_RULES.md ("Reason codes") and of
    CLINICAL_RULES.md ("The two rules that can refuse"); a unit test holds the
    enum equal to the catalogues."""

    PRESCRIBER_NOT_CERTIFIED = "PRESCRIBER_NOT_CERTIFIED"
    PHARMACY_NOT_CERTIFIED = "PHARMACY_NOT_CERTIFIED"
    PHARMACY_CERTIFICATION_EXPIRED = "PHARMACY_CERTIFICATION_EXPIRED"
    PHARMACIST_NOT_TRAINED = "PHARMACIST_NOT_TRAINED"
    PATIENT_NOT_ELIGIBLE = "PATIENT_NOT_ELIGIBLE"
    PATIENT_PRESCRIBER_MISMATCH = "PATIENT_PRESCRIBER_MISMATCH"
    PRESCRIBER_SURVEY_INCOMPLETE = "PRESCRIBER_SURVEY_INCOMPLETE"
    PREGNANCY_TEST_MISSING = "PREGNANCY_TEST_MISSING"
    PREGNANCY_TEST_OUT_OF_WINDOW = "PREGNANCY_TEST_OUT_OF_WINDOW"
    PREGNANCY_TEST_STALE = "PREGNANCY_TEST_STALE"
    PREGNANCY_TEST_POSITIVE = "PREGNANCY_TEST_POSITIVE"
    PATIENT_SURVEY_OVERDUE = "PATIENT_SURVEY_OVERDUE"
    DAYS_SUPPLY_EXCEEDED = "DAYS_SUPPLY_EXCEEDED"
    QUANTITY_EXCEEDED = "QUANTITY_EXCEEDED"
    AUTHORIZATION_NOT_FOUND = "AUTHORIZATION_NOT_FOUND"
    AUTHORIZATION_EXPIRED = "AUTHORIZATION_EXPIRED"
    AUTHORIZATION_VOIDED = "AUTHORIZATION_VOIDED"
    AUTHORIZATION_ALREADY_USED = "AUTHORIZATION_ALREADY_USED"
    AUTHORIZATION_PATIENT_MISMATCH = "AUTHORIZATION_PATIENT_MISMATCH"
    EARLY_REFILL = "EARLY_REFILL"
    COUNSELING_INCOMPLETE = "COUNSELING_INCOMPLETE"
    TREATMENT_ON_HOLD = "TREATMENT_ON_HOLD"
    CLINICAL_ALERT_UNACKNOWLEDGED = "CLINICAL_ALERT_UNACKNOWLEDGED"


@dataclass(frozen=True)
class Reason:
    """One failing check: ``as_dict`` is the stored and replayed form.

    ``code`` and ``rule`` are converted to their enums on construction, so a
    code or rule ID outside the catalogues raises ``ValueError`` at once.
    """

    code: Code
    rule: Rule
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", Code(self.code))
        object.__setattr__(self, "rule", Rule(self.rule))

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "rule": self.rule.value, "message": self.message}
