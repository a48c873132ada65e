"""The rule IDs and reason codes of the catalogues: ``REMS_RULES.md`` (the REMS gate) and
``CLINICAL_RULES.md`` (treatment courses, labs and advisories).

Every reason and every warning cites one of these. The values are the exact
IDs of the catalogues (they are stored in decisions and audit entries and
replayed, so a value never changes); a unit test holds the enum equal to the
IDs the two catalogues define. Members are named after their ID with ``_``
for ``-``: ``Rule.R_DISP_2`` is ``"R-DISP-2"``.
"""

from __future__ import annotations

from enum import Enum


class Rule(str, Enum):
    """A rule ID of ``REMS_RULES.md`` or ``CLINICAL_RULES.md``."""

    # REMS_RULES.md: participants.
    R_PRES_1 = "R-PRES-1"
    R_PRES_2 = "R-PRES-2"
    R_PHA_1 = "R-PHA-1"
    R_PHA_2 = "R-PHA-2"
    R_PHA_3 = "R-PHA-3"
    R_PAT_1 = "R-PAT-1"
    R_PAT_2 = "R-PAT-2"
    # Risk categories.
    R_CAT_1 = "R-CAT-1"
    R_CAT_2 = "R-CAT-2"
    # Pregnancy testing.
    R_PREG_1 = "R-PREG-1"
    R_PREG_2 = "R-PREG-2"
    R_PREG_3 = "R-PREG-3"
    R_PREG_4 = "R-PREG-4"
    R_PREG_5 = "R-PREG-5"
    # Contraception, donation, counseling.
    R_CONTRA_1 = "R-CONTRA-1"
    R_CONTRA_2 = "R-CONTRA-2"
    R_COUNSEL_1 = "R-COUNSEL-1"
    # Patient surveys.
    R_SURV_1 = "R-SURV-1"
    R_SURV_2 = "R-SURV-2"
    R_SURV_3 = "R-SURV-3"
    # Prescription authorization.
    R_AUTH_1 = "R-AUTH-1"
    R_AUTH_2 = "R-AUTH-2"
    R_AUTH_3 = "R-AUTH-3"
    R_AUTH_4 = "R-AUTH-4"
    R_AUTH_5 = "R-AUTH-5"
    # Dispensing.
    R_DISP_1 = "R-DISP-1"
    R_DISP_2 = "R-DISP-2"
    R_DISP_3 = "R-DISP-3"
    R_DISP_4 = "R-DISP-4"
    R_DISP_5 = "R-DISP-5"
    R_DISP_6 = "R-DISP-6"
    # Audit.
    R_AUD_1 = "R-AUD-1"
    R_AUD_2 = "R-AUD-2"
    R_AUD_3 = "R-AUD-3"

    # CLINICAL_RULES.md: advisories (warnings) and the two rules that can refuse.
    R_CBC_1 = "R-CBC-1"
    R_CBC_2 = "R-CBC-2"
    R_CBC_3 = "R-CBC-3"
    R_CBC_4 = "R-CBC-4"
    R_DOSE_1 = "R-DOSE-1"
    R_DOSE_2 = "R-DOSE-2"
    R_RENAL_1 = "R-RENAL-1"
    R_CYCLE_1 = "R-CYCLE-1"
    R_CYCLE_2 = "R-CYCLE-2"
    R_CYCLE_3 = "R-CYCLE-3"
    R_VTE_1 = "R-VTE-1"
    R_RESP_1 = "R-RESP-1"
    R_RESP_2 = "R-RESP-2"
    R_ACK_1 = "R-ACK-1"


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
