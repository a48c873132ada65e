"""Validation of the external identifiers participants are registered under."""

from __future__ import annotations

#: The ISO prefix (health applications, United States) that the NPI check
#: digit is computed over, per the CMS NPI check-digit specification.
NPI_LUHN_PREFIX = "80840"


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def npi_problem(npi: str) -> str | None:
    """Return why ``npi`` is not a valid National Provider Identifier, or None.

    An NPI is 10 ASCII digits whose last digit is the Luhn check digit of
    ``80840`` followed by the first nine digits.
    """
    if not (len(npi) == 10 and npi.isascii() and npi.isdigit()):
        return "NPI must be exactly 10 digits."
    if not _luhn_valid(NPI_LUHN_PREFIX + npi):
        return "NPI check digit is invalid."
    return None


def ncpdp_problem(ncpdp_id: str) -> str | None:
    """Return why ``ncpdp_id`` is not a valid NCPDP provider id, or None (7 digits)."""
    if not (len(ncpdp_id) == 7 and ncpdp_id.isascii() and ncpdp_id.isdigit()):
        return "NCPDP ID must be exactly 7 digits."
    return None
