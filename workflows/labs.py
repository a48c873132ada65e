"""Lab results by LOINC code (CLINICAL_RULES.md "Lab results"): the accepted codes, their
canonical units and the unit conversion, done by pint from UCUM spellings.

A result is stored in the unit it was sent in *and* converted to its code's
canonical unit, which is what the advisory rules read. An unknown code, a unit
that does not convert to the canonical one or a future ``collected_at`` is a
``LabProblem`` naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any

import pint

from .clock import ensure_utc


class LabKind(str, Enum):
    ANC = "anc"
    PLATELETS = "platelets"
    HEMOGLOBIN = "hemoglobin"
    WBC = "wbc"
    SERUM_M_PROTEIN = "serum_m_protein"
    URINE_M_PROTEIN = "urine_m_protein"
    CREATININE = "creatinine"
    CREATININE_CLEARANCE = "creatinine_clearance"
    PREGNANCY = "pregnancy"


@dataclass(frozen=True)
class LoincCode:
    code: str
    kind: LabKind
    name: str
    #: The UCUM unit values are stored and compared in (None: qualitative pregnancy tests).
    canonical_unit: str | None
    #: g/mol, to convert a molar concentration (µmol/L) to a mass one.
    molar_mass_g_mol: float | None = None
    #: Pregnancy tests: True when the result is a number (hCG mIU/mL), False for negative/positive.
    quantitative: bool = True


#: CLINICAL_RULES.md's accepted LOINC codes.
LOINC: dict[str, LoincCode] = {
    c.code: c
    for c in (
        LoincCode("751-8", LabKind.ANC, "Neutrophils [#/volume] in Blood (ANC)", "10*3/uL"),
        LoincCode("777-3", LabKind.PLATELETS, "Platelets [#/volume] in Blood", "10*3/uL"),
        LoincCode("718-7", LabKind.HEMOGLOBIN, "Hemoglobin [Mass/volume] in Blood", "g/dL"),
        LoincCode("6690-2", LabKind.WBC, "Leukocytes [#/volume] in Blood", "10*3/uL"),
        LoincCode("33358-3", LabKind.SERUM_M_PROTEIN, "Monoclonal protein [Mass/volume] in Serum", "g/dL"),
        LoincCode("42482-0", LabKind.URINE_M_PROTEIN, "Monoclonal protein [Mass/time] in 24 hour Urine", "mg/(24.h)"),
        LoincCode("2160-0", LabKind.CREATININE, "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 113.12),
        LoincCode("2164-2", LabKind.CREATININE_CLEARANCE, "Creatinine renal clearance", "mL/min"),
        LoincCode("2106-3", LabKind.PREGNANCY, "Choriogonadotropin [Presence] in Urine", None, quantitative=False),
        LoincCode(
            "2118-8", LabKind.PREGNANCY, "Choriogonadotropin [Presence] in Serum or Plasma", None, quantitative=False
        ),
        LoincCode("19080-1", LabKind.PREGNANCY, "Choriogonadotropin [Units/volume] in Serum or Plasma", "m[IU]/mL"),
        LoincCode(
            "21198-7",
            LabKind.PREGNANCY,
            "Choriogonadotropin.beta subunit [Units/volume] in Serum or Plasma",
            "m[IU]/mL",
        ),
    )
}

#: Codes by kind, for the decision reads and the summary.
CBC_CODES = ("751-8", "777-3", "718-7", "6690-2")
RESPONSE_CODES = ("33358-3", "42482-0")
RENAL_CODES = ("2160-0", "2164-2")
ADVISORY_CODES = CBC_CODES + RESPONSE_CODES + RENAL_CODES


def code_of(kind: LabKind) -> str:
    return next(c.code for c in LOINC.values() if c.kind is kind)


class LabProblem(ValueError):
    """A lab result that cannot be recorded; ``field`` names the request field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@lru_cache(maxsize=1)
def _registry() -> Any:
    ureg: Any = pint.UnitRegistry()
    # UCUM's arbitrary "international unit" (hCG assays): comparable only with itself.
    ureg.define("international_unit = [international_unit] = IU")
    return ureg


_UCUM_POWER = re.compile(r"10\*(-?\d+)|10\^(-?\d+)")
_UCUM_TIME_FACTOR = re.compile(r"\((\d+)\.(h|d|min)\)")


def _pint_expression(ucum: str) -> str:
    """A UCUM spelling as a pint expression: ``10*3/uL`` → ``10**3/uL``, ``/uL`` → ``1/uL``,
    ``mg/(24.h)`` → ``mg/(24*h)``, ``m[IU]/mL`` → ``mIU/mL``, ``{cells}`` annotations dropped."""
    text = ucum.strip()
    if not text:
        raise ValueError("empty unit")
    text = re.sub(r"\{[^}]*\}", "1", text)
    text = text.replace("[IU]", "IU").replace("[iU]", "IU")
    text = _UCUM_POWER.sub(lambda m: f"10**{m.group(1) or m.group(2)}", text)
    text = _UCUM_TIME_FACTOR.sub(lambda m: f"({m.group(1)}*{m.group(2)})", text)
    text = text.replace(".", "*") if not re.search(r"\d\.\d", text) else text
    if text.startswith("/"):
        text = "1" + text
    return text


def _quantity(ucum: str) -> Any:
    try:
        return _registry().parse_expression(_pint_expression(ucum))
    except (pint.errors.PintError, ValueError, TypeError, AttributeError, SyntaxError) as exc:
        raise LabProblem("unit", f"{ucum!r} is not a unit this service reads (use UCUM, e.g. 10*3/uL, g/dL).") from exc


def convert(value: float, unit: str, code: LoincCode) -> float:
    """``value`` in ``unit`` expressed in ``code``'s canonical unit (10 significant digits).

    Raises ``LabProblem('unit')`` for an unknown or inconvertible unit.
    """
    if code.canonical_unit is None:
        raise LabProblem("unit", f"LOINC {code.code} is qualitative: it has no unit.")
    source = value * _quantity(unit)
    target = _quantity(code.canonical_unit)
    ureg = _registry()
    try:
        if code.molar_mass_g_mol is not None and source.dimensionality == ureg.parse_expression("mol/L").dimensionality:
            source = source * ureg.Quantity(code.molar_mass_g_mol, "g/mol")
        ratio = (source / target).to("dimensionless").magnitude
    except pint.errors.DimensionalityError as exc:
        raise LabProblem(
            "unit", f"{unit!r} does not convert to {code.canonical_unit} (the unit of LOINC {code.code})."
        ) from exc
    return float(f"{float(ratio):.10g}")


@dataclass(frozen=True)
class NormalizedLab:
    code: LoincCode
    value: float
    canonical_value: float
    canonical_unit: str


def normalize(loinc: str, value: Any, unit: str | None, collected_at: datetime, now: datetime) -> NormalizedLab:
    """Check and convert one numeric result; raises ``LabProblem`` naming the field."""
    code = LOINC.get(loinc.strip())
    if code is None:
        raise LabProblem("loinc", f"LOINC {loinc!r} is not one this service accepts: {', '.join(sorted(LOINC))}.")
    if ensure_utc(collected_at) > ensure_utc(now):
        raise LabProblem("collected_at", "Cannot be in the future.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LabProblem("value", f"LOINC {code.code} takes a number.")
    if value < 0:
        raise LabProblem("value", "Cannot be negative.")
    if unit is None:
        raise LabProblem("unit", f"LOINC {code.code} needs a unit (UCUM, e.g. {code.canonical_unit}).")
    converted = convert(float(value), unit, code)
    assert code.canonical_unit is not None
    return NormalizedLab(code, float(value), converted, code.canonical_unit)
