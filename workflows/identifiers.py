"""Validation of the external identifiers participants are registered under."""

from __future__ import annotations

import secrets

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


#: Crockford base32: no I, L, O or U, so a number read over the phone or
#: copied by hand cannot be misread.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: What a person may type for a symbol that is not in the alphabet.
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
#: Symbols in an authorization or confirmation number: 15 × 5 = 75 random
#: bits, above R-AUTH-4's 64.
REFERENCE_SYMBOLS = 15


def new_reference_number(prefix: str) -> str:
    """A fresh ``PREFIX-XXXXX-XXXXX-XXXXX`` number (R-AUTH-4): drawn from the
    operating system's cryptographic source, so it is unguessable and never
    derived from its subject. Uniqueness is the database's unique constraint.
    """
    body = "".join(secrets.choice(CROCKFORD) for _ in range(REFERENCE_SYMBOLS))
    return f"{prefix}-{body[0:5]}-{body[5:10]}-{body[10:15]}"


def normalize_reference_number(value: str) -> str:
    """The canonical form of a typed number: upper case, O→0 and I/L→1, no spaces."""
    return "".join(value.split()).upper().translate(_CROCKFORD_ALIASES)


def number_problem(value: str, prefix: str) -> str | None:
    """Why ``value`` (already normalized) cannot be a ``PREFIX-XXXXX-XXXXX-XXXXX`` number, or None.

    A number that fails this was mistyped; one that passes but is unknown was
    never issued (or belongs to another prescription).
    """
    head, _, body = value.partition("-")
    groups = body.split("-")
    if head != prefix:
        return f"it must start with {prefix}-"
    if len(groups) != 3 or any(len(g) != REFERENCE_SYMBOLS // 3 for g in groups):
        return "it must have three groups of five letters or digits"
    if any(ch not in CROCKFORD for g in groups for ch in g):
        return "it may hold only digits and the letters A-Z without I, L, O or U"
    return None
