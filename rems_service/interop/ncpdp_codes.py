"""INTEROP.md's mapping of our reason codes onto the NCPDP SCRIPT REMS reason codes: one code
per answer, chosen in the table's order (patient first), every reason in ``REMSNote``.

A rendering table, not a rule: the decision has already been made by the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from workflows.rules import Code

from . import clinical

#: The NCPDP codes in INTEROP.md's order: the first one any reason maps to is the answer's.
ORDER = ("EZ", "EM", "EX", "ES", "EY", "EO", "EC", "ER")
PATIENT_DEACTIVATED = "EZ"
PATIENT_UNMET = "EM"
PRESCRIBER_DEACTIVATED = "EX"
PRESCRIBER_UNMET = "ES"
PHARMACY_DEACTIVATED = "EY"
PHARMACY_UNMET = "EO"
CASE_INVALID = "EC"
PROGRAM_ERROR = "ER"

#: Participant statuses that mean "deactivated" rather than "requirements unmet".
DEACTIVATED = frozenset({"suspended", "decertified"})

#: Codes whose NCPDP code does not depend on a participant's status.
FIXED: Mapping[Code, str] = {
    Code.PATIENT_NOT_ELIGIBLE: PATIENT_DEACTIVATED,
    Code.PREGNANCY_TEST_POSITIVE: PATIENT_DEACTIVATED,
    Code.PREGNANCY_TEST_MISSING: PATIENT_UNMET,
    Code.PREGNANCY_TEST_OUT_OF_WINDOW: PATIENT_UNMET,
    Code.PREGNANCY_TEST_STALE: PATIENT_UNMET,
    Code.PATIENT_SURVEY_OVERDUE: PATIENT_UNMET,
    Code.AUTHORIZATION_PATIENT_MISMATCH: PATIENT_UNMET,
    Code.PATIENT_PRESCRIBER_MISMATCH: PATIENT_UNMET,
    Code.PRESCRIBER_SURVEY_INCOMPLETE: PRESCRIBER_UNMET,
    Code.PHARMACY_CERTIFICATION_EXPIRED: PHARMACY_DEACTIVATED,
    Code.PHARMACIST_NOT_TRAINED: PHARMACY_UNMET,
    Code.COUNSELING_INCOMPLETE: PHARMACY_UNMET,
    Code.AUTHORIZATION_NOT_FOUND: CASE_INVALID,
    Code.AUTHORIZATION_EXPIRED: CASE_INVALID,
    Code.AUTHORIZATION_VOIDED: CASE_INVALID,
    Code.AUTHORIZATION_ALREADY_USED: CASE_INVALID,
    Code.DAYS_SUPPLY_EXCEEDED: CASE_INVALID,
    Code.QUANTITY_EXCEEDED: CASE_INVALID,
    Code.EARLY_REFILL: CASE_INVALID,
    Code.TREATMENT_ON_HOLD: CASE_INVALID,
    Code.CLINICAL_ALERT_UNACKNOWLEDGED: CASE_INVALID,
}

#: Codes that tell a deactivated participant (suspended, decertified) from a pending one.
BY_STATUS: Mapping[Code, tuple[str, str, str]] = {
    # code: (whose status, code when deactivated, code otherwise)
    Code.PRESCRIBER_NOT_CERTIFIED: ("prescriber", PRESCRIBER_DEACTIVATED, PRESCRIBER_UNMET),
    Code.PHARMACY_NOT_CERTIFIED: ("pharmacy", PHARMACY_DEACTIVATED, PHARMACY_UNMET),
}


def ncpdp_code(code: str, statuses: Mapping[str, str]) -> str:
    """The NCPDP code of one of our reason codes, given the participants' statuses the
    decision read; a code this table does not know is a case problem (``EC``)."""
    try:
        ours = Code(code)
    except ValueError:
        return CASE_INVALID
    if ours in BY_STATUS:
        whose, deactivated, unmet = BY_STATUS[ours]
        return deactivated if statuses.get(whose) in DEACTIVATED else unmet
    return FIXED.get(ours, CASE_INVALID)


def choose(codes: Iterable[str]) -> str:
    """The first of ``codes`` in INTEROP.md's order."""
    wanted = set(codes)
    for candidate in ORDER:
        if candidate in wanted:
            return candidate
    raise ValueError("no reason to choose from")


#: Between the reasons and the clinical warnings in ``REMSNote`` (INTEROP.md).
WARNINGS_MARK = " | WARNINGS: "


def note(reasons: Iterable[Mapping[str, Any]], warnings: Iterable[Mapping[str, Any]] = ()) -> str:
    """Every reason as ``CODE (RULE): message``, separated by ``; `` (INTEROP.md); then, when the
    decision carries clinical warnings, ``| WARNINGS: `` and each warning as ``severity CODE
    (RULE): message Evidence: ...`` separated by ``; ``. A semicolon inside a message becomes
    a comma and a bar a slash, so the separators alone split the note."""
    parts = [f"{r['code']} ({r['rule']}): {str(r['message']).replace(';', ',').replace('|', '/')}" for r in reasons]
    text = "; ".join(parts)
    shown = clinical.lines(warnings)
    if shown:
        text += (WARNINGS_MARK if text else WARNINGS_MARK.removeprefix(" | ")) + "; ".join(shown)
    return text
