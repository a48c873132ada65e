from __future__ import annotations

import pytest

from workflows.identifiers import ncpdp_problem, npi_problem


@pytest.mark.parametrize(
    "npi, valid",
    [
        ("1234567893", True),  # the CMS specification's worked example
        ("1245319599", True),
        ("1234567890", False),
        ("1234567894", False),
        ("0000000000", False),
        ("123456789", False),
        ("12345678930", False),
        ("123456789O", False),
        ("", False),
        ("١٢٣٤٥٦٧٨٩٣", False),  # Arabic-Indic digits pass str.isdigit() but are not ASCII
    ],
)
def test_npi_check_digit(npi, valid):
    assert (npi_problem(npi) is None) is valid


@pytest.mark.parametrize(
    "ncpdp, valid", [("1234567", True), ("0000001", True), ("123456", False), ("12345678", False), ("123456a", False)]
)
def test_ncpdp_id(ncpdp, valid):
    assert (ncpdp_problem(ncpdp) is None) is valid
