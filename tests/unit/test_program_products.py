"""The covered products of the program definition (INTEROP.md, "The drug")."""

from __future__ import annotations

from datetime import date

import pytest

from config.programs import load_program
from workflows.errors import ProgramDefinitionError
from workflows.program import NDC_SYSTEM, RXNORM_SYSTEM, Products, normalize_ndc, parse_program_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("59572-410-28", "59572041028"),  # 5-3-2
        ("0069-0150-01", "00069015001"),  # 4-4-2
        ("12345-6789-1", "12345678901"),  # 5-4-1
        ("59572041028", "59572041028"),
        ("5957241028", None),  # 10 digits without hyphens: ambiguous
        ("59572-410", "595720410"),  # a product code
        ("5957a-410-28", None),
        ("123456-410-28", None),
    ],
)
def test_ndcs_compare_in_11_digit_form(text, expected):
    assert normalize_ndc(text) == expected


def test_the_shipped_program_covers_lenalidomide_and_nothing_else():
    for version in load_program().versions:
        products = version.products
        assert products.covers(NDC_SYSTEM, "59572-410-28") and products.covers_ndc("59572041028")
        assert products.covers(RXNORM_SYSTEM, "342369") and products.covers_rxnorm("602910")
        assert not products.covers_ndc("00069015001") and not products.covers_rxnorm("197361")
        assert not products.covers("http://example.org/other", "602910")


def test_a_bad_products_table_refuses_to_load():
    base = {
        "program": "lenalidomide",
        "version": "x",
        "effective_from": date(2030, 1, 1),
        "timezone": "UTC",
        "initial_test_1_window_days": [10, 14],
        "initial_test_2_window_hours": 24,
        "test_max_sensitivity_miu_ml": 50,
        "max_days_supply": 28,
        "confirmation_valid_hours": 24,
        "refill_max_remaining_days": 7,
        "pharmacy_certification_days": 730,
        "adult_age_years": 18,
        "monitoring": {
            "first_phase_days": 28,
            "first_phase_interval_days": 7,
            "regular_interval_days": 28,
            "irregular_interval_days": 14,
        },
        "survey_interval_days": {"default": 28, "FNRP_ADULT": 182},
        "authorization_valid_days": {"FRP": 7, "others": 30},
    }
    assert parse_program_version(base).products == Products()
    with pytest.raises(ProgramDefinitionError) as raised:
        parse_program_version({**base, "products": {"rxnorm": [342369], "ndc": ["59572-410-28"], "atc": []}})
    text = str(raised.value)
    assert "products.rxnorm" in text and "products.ndc" in text and "atc" in text
