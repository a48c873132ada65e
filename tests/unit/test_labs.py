"""CLINICAL_RULES.md "Lab results": unit conversion through pint from UCUM spellings, and the
refusals naming the field (unknown code, inconvertible unit, future time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.labs import LOINC, LabProblem, normalize

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "loinc, value, unit, canonical",
    [
        pytest.param("777-3", 29900, "/uL", 29.9, id="platelets-per-uL"),
        pytest.param("777-3", 30000, "/uL", 30.0, id="platelets-per-uL-30"),
        pytest.param("777-3", 29.9, "10*3/uL", 29.9, id="platelets-10*3/uL"),
        pytest.param("777-3", 30, "10*9/L", 30.0, id="platelets-10*9/L"),
        pytest.param("751-8", 990, "/uL", 0.99, id="anc-per-uL"),
        pytest.param("751-8", 1.0, "10*3/uL", 1.0, id="anc-10*3/uL"),
        pytest.param("751-8", 1.0, "10^9/L", 1.0, id="anc-10^9/L"),
        pytest.param("718-7", 80, "g/L", 8.0, id="hemoglobin-g/L"),
        pytest.param("33358-3", 5, "g/L", 0.5, id="m-protein-g/L"),
        pytest.param("33358-3", 0.49, "g/dL", 0.49, id="m-protein-g/dL"),
        pytest.param("33358-3", 4.9, "g/L", 0.49, id="m-protein-4.9-g/L"),
        pytest.param("42482-0", 200, "mg/(24.h)", 200.0, id="urine-mg/(24.h)"),
        pytest.param("42482-0", 0.2, "g/(24.h)", 200.0, id="urine-g/(24.h)"),
        pytest.param("42482-0", 200, "mg/d", 200.0, id="urine-mg/d"),
        pytest.param("2164-2", 1, "mL/s", 60.0, id="clearance-mL/s"),
        pytest.param("2164-2", 59, "mL/min", 59.0, id="clearance-mL/min"),
        pytest.param("2160-0", 88.4, "umol/L", 0.9999808, id="creatinine-umol/L"),
        pytest.param("19080-1", 5, "IU/L", 5.0, id="hcg-IU/L"),
    ],
)
def test_units_convert_to_the_code_s_canonical_unit(loinc, value, unit, canonical):
    result = normalize(loinc, value, unit, NOW - timedelta(hours=1), NOW)
    assert result.canonical_value == canonical
    assert result.canonical_unit == LOINC[loinc].canonical_unit
    assert result.value == value


@pytest.mark.parametrize(
    "loinc, value, unit, at, field",
    [
        pytest.param("1234-5", 1, "g/dL", NOW, "loinc", id="unknown-code"),
        pytest.param("777-3", 1, "g/dL", NOW, "unit", id="mass-for-a-count"),
        pytest.param("33358-3", 1, "mg/(24.h)", NOW, "unit", id="rate-for-a-concentration"),
        pytest.param("42482-0", 1, "g/dL", NOW, "unit", id="concentration-for-a-rate"),
        pytest.param("33358-3", 1, "furlong", NOW, "unit", id="unknown-unit"),
        pytest.param("33358-3", 1, "", NOW, "unit", id="empty-unit"),
        pytest.param("33358-3", 1, None, NOW, "unit", id="no-unit"),
        pytest.param("777-3", 1, "10*3/uL", NOW + timedelta(seconds=1), "collected_at", id="future"),
        pytest.param("777-3", "high", "10*3/uL", NOW, "value", id="not-a-number"),
        pytest.param("777-3", -1, "10*3/uL", NOW, "value", id="negative"),
    ],
)
def test_refusals_name_the_field(loinc, value, unit, at, field):
    with pytest.raises(LabProblem) as caught:
        normalize(loinc, value, unit, at, NOW)
    assert caught.value.field == field and caught.value.message
