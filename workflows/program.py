"""The versioned program definition: every number of the REMS rules.

A ``ProgramVersion`` holds the parameters of REMS_RULES.md's table. A
``Program`` holds every version, ordered by ``effective_from``, and answers
which one is in force at an instant. Parsing is strict: an unknown key, a
missing key or an out-of-range value is a ``ProgramDefinitionError`` listing
every problem, so a bad file refuses to start the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clinical_params import ClinicalParams, parse_clinical
from .clock import ensure_utc
from .errors import NoProgramInForce, ProgramDefinitionError


@dataclass(frozen=True)
class Monitoring:
    """R-PREG-3: pregnancy-test intervals during therapy."""

    first_phase_days: int
    first_phase_interval_days: int
    regular_interval_days: int
    irregular_interval_days: int


#: The code systems a covered product is named in (INTEROP.md, "The drug").
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"

#: The three segment lengths a hyphenated 10-digit NDC may have, and the 11-digit (5-4-2) form.
_NDC_SEGMENTS_11 = (5, 4, 2)


def normalize_ndc(text: str) -> str | None:
    """An NDC as 11 digits (5-4-2), or None when ``text`` is not an NDC.

    Hyphenated codes are padded segment by segment (``59572-410-28`` →
    ``59572041028``); an unhyphenated code must already have 11 digits (a
    10-digit one is ambiguous). A product code (labeler and product, no
    package) normalizes to 9 digits (``59572-410`` → ``595720410``).
    """
    text = text.strip()
    if "-" not in text:
        return text if text.isdigit() and len(text) in (9, 11) else None
    parts = text.split("-")
    if len(parts) not in (2, 3) or not all(p.isdigit() and p for p in parts):
        return None
    padded = []
    for part, width in zip(parts, _NDC_SEGMENTS_11, strict=False):
        if len(part) > width:
            return None
        padded.append(part.zfill(width))
    return "".join(padded)


@dataclass(frozen=True)
class Products:
    """The products the program covers (INTEROP.md): RxNorm codes (the ingredient and its
    clinical drugs) and NDC product codes (9 digits: labeler and product, any package)."""

    rxnorm: frozenset[str] = frozenset()
    ndc_products: frozenset[str] = frozenset()

    def covers_rxnorm(self, code: str) -> bool:
        return code.strip() in self.rxnorm

    def covers_ndc(self, code: str) -> bool:
        """A package (11 digits) or product (9 digits) NDC, with or without hyphens."""
        normalized = normalize_ndc(code)
        return normalized is not None and normalized[:9] in self.ndc_products

    def covers(self, system: str | None, code: str) -> bool:
        """Whether ``code`` of ``system`` (RXNORM_SYSTEM or NDC_SYSTEM) names a covered product."""
        if system == RXNORM_SYSTEM:
            return self.covers_rxnorm(code)
        if system == NDC_SYSTEM:
            return self.covers_ndc(code)
        return False


@dataclass(frozen=True)
class ProgramVersion:
    """One version of the program's parameters, in force from ``effective_from``."""

    program: str
    version: str
    effective_from: date
    timezone: str
    initial_test_1_window_days: tuple[int, int]
    initial_test_2_window_hours: int
    test_max_sensitivity_miu_ml: int
    monitoring: Monitoring
    survey_interval_days_default: int
    survey_interval_days_fnrp_adult: int
    max_days_supply: int
    #: R-AUTH-5, from version 2026.1 on; None in a version that predates the rule (not checked).
    max_capsules_per_day: int | None
    authorization_valid_days_frp: int
    authorization_valid_days_other: int
    confirmation_valid_hours: int
    refill_max_remaining_days: int
    pharmacy_certification_days: int
    adult_age_years: int
    #: The covered products (the program file's ``[products]`` table); none when it has none.
    products: Products = Products()
    #: CLINICAL_RULES.md's parameters; None in a version without a ``clinical`` table (no advisories).
    clinical: ClinicalParams | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def starts_at(self) -> datetime:
        """The instant the version takes effect: midnight of ``effective_from`` in its zone."""
        return datetime.combine(self.effective_from, time.min, tzinfo=self.tz)

    def max_quantity(self, days_supply: int) -> int | None:
        """R-AUTH-5: the most capsules a ``days_supply``-day prescription may hold; None when
        this version predates the rule."""
        return None if self.max_capsules_per_day is None else days_supply * self.max_capsules_per_day

    def pharmacy_certified_until(self, certified_at: datetime) -> datetime:
        """R-PHA-2: the end of a pharmacy certification granted at ``certified_at``."""
        return ensure_utc(certified_at) + timedelta(days=self.pharmacy_certification_days)


@dataclass(frozen=True)
class Program:
    """Every version of one program, ordered by ``effective_from``."""

    name: str
    versions: tuple[ProgramVersion, ...]

    def in_force(self, now: datetime) -> ProgramVersion:
        """Return the version in force at ``now``; raise ``NoProgramInForce`` before the first."""
        now = ensure_utc(now)
        current = None
        for candidate in self.versions:
            if candidate.starts_at <= now:
                current = candidate
        if current is None:
            raise NoProgramInForce(f"no version of program {self.name!r} is in force at {now.isoformat()}")
        return current

    def version(self, version: str) -> ProgramVersion:
        """Return the version named ``version`` (for replaying a recorded decision)."""
        for candidate in self.versions:
            if candidate.version == version:
                return candidate
        raise KeyError(version)


_TOP_KEYS = {
    "program",
    "version",
    "effective_from",
    "timezone",
    "initial_test_1_window_days",
    "initial_test_2_window_hours",
    "test_max_sensitivity_miu_ml",
    "monitoring",
    "survey_interval_days",
    "max_days_supply",
    "max_capsules_per_day",
    "authorization_valid_days",
    "confirmation_valid_hours",
    "refill_max_remaining_days",
    "pharmacy_certification_days",
    "adult_age_years",
    "products",
    "clinical",
}
#: Parameters of rules catalogued after the first version: absent from versions that predate them.
_OPTIONAL_TOP_KEYS = frozenset({"max_capsules_per_day", "products", "clinical"})
_PRODUCT_KEYS = {"rxnorm", "ndc"}
_MONITORING_KEYS = {
    "first_phase_days",
    "first_phase_interval_days",
    "regular_interval_days",
    "irregular_interval_days",
}
_SURVEY_KEYS = {"default", "FNRP_ADULT"}
_AUTH_KEYS = {"FRP", "others"}


class _Reader:
    """Collects every problem of one document instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def keys(
        self, where: str, data: Any, expected: set[str], optional: frozenset[str] = frozenset()
    ) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            self.problems.append(f"{where} must be a table")
            return {}
        for missing in sorted(expected - optional - data.keys()):
            self.problems.append(f"{where}.{missing} is missing" if where else f"{missing} is missing")
        for unknown in sorted(data.keys() - expected):
            self.problems.append(
                f"{where}.{unknown} is not a known parameter" if where else f"{unknown} is not a known parameter"
            )
        return data

    def positive_int(self, where: str, value: Any, maximum: int = 10_000) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
            if value is not None:
                self.problems.append(f"{where} must be an integer between 1 and {maximum}, got {value!r}")
            return 0
        return value

    def text(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            if value is not None:
                self.problems.append(f"{where} must be a non-empty string")
            return ""
        return value


def _effective_from(r: _Reader, value: Any) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        if value is not None:
            r.problems.append("effective_from must be a date (YYYY-MM-DD)")
        return date.min
    return value


def _timezone(r: _Reader, value: Any) -> str:
    zone = r.text("timezone", value)
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            r.problems.append(f"timezone {zone!r} is not a known IANA time zone")
    return zone


def _initial_window(r: _Reader, window: Any) -> list[int]:
    if (
        not isinstance(window, list)
        or len(window) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in window)
        or window[0] > window[1]
    ):
        if window is not None:
            r.problems.append("initial_test_1_window_days must be [earliest, latest] days, earliest <= latest")
        return [0, 0]
    return window


def _products(r: _Reader, data: Any) -> Products:
    """The ``[products]`` table: ``rxnorm`` codes and ``ndc`` product codes (``59572-410``)."""
    if data is None:
        return Products()
    table = r.keys("products", data, _PRODUCT_KEYS)
    rxnorm, ndc = table.get("rxnorm", []), table.get("ndc", [])
    if not isinstance(rxnorm, list) or not all(isinstance(c, str) and c.isdigit() for c in rxnorm):
        r.problems.append("products.rxnorm must be a list of RxNorm codes (digits, as strings)")
        rxnorm = []
    products = set()
    if not isinstance(ndc, list):
        r.problems.append("products.ndc must be a list of NDC product codes")
        ndc = []
    for code in ndc:
        normalized = normalize_ndc(code) if isinstance(code, str) else None
        if normalized is None or len(normalized) != 9:
            r.problems.append(f"products.ndc: {code!r} is not an NDC product code (labeler-product, e.g. 59572-410)")
        else:
            products.add(normalized)
    return Products(rxnorm=frozenset(rxnorm), ndc_products=frozenset(products))


def parse_program_version(data: Mapping[str, Any], source: str = "program") -> ProgramVersion:
    """Build a ``ProgramVersion`` from a parsed document; raise ``ProgramDefinitionError``."""
    r = _Reader()
    top = r.keys("", data, _TOP_KEYS, optional=_OPTIONAL_TOP_KEYS)
    mon = r.keys("monitoring", top.get("monitoring", {}), _MONITORING_KEYS)
    survey = r.keys("survey_interval_days", top.get("survey_interval_days", {}), _SURVEY_KEYS)
    auth = r.keys("authorization_valid_days", top.get("authorization_valid_days", {}), _AUTH_KEYS)

    effective_from = _effective_from(r, top.get("effective_from"))
    zone = _timezone(r, top.get("timezone"))
    window = _initial_window(r, top.get("initial_test_1_window_days"))

    version = ProgramVersion(
        program=r.text("program", top.get("program")),
        version=r.text("version", top.get("version")),
        effective_from=effective_from,
        timezone=zone,
        initial_test_1_window_days=(window[0], window[1]),
        initial_test_2_window_hours=r.positive_int(
            "initial_test_2_window_hours", top.get("initial_test_2_window_hours")
        ),
        test_max_sensitivity_miu_ml=r.positive_int(
            "test_max_sensitivity_miu_ml", top.get("test_max_sensitivity_miu_ml")
        ),
        monitoring=Monitoring(
            first_phase_days=r.positive_int("monitoring.first_phase_days", mon.get("first_phase_days")),
            first_phase_interval_days=r.positive_int(
                "monitoring.first_phase_interval_days", mon.get("first_phase_interval_days")
            ),
            regular_interval_days=r.positive_int("monitoring.regular_interval_days", mon.get("regular_interval_days")),
            irregular_interval_days=r.positive_int(
                "monitoring.irregular_interval_days", mon.get("irregular_interval_days")
            ),
        ),
        survey_interval_days_default=r.positive_int("survey_interval_days.default", survey.get("default")),
        survey_interval_days_fnrp_adult=r.positive_int("survey_interval_days.FNRP_ADULT", survey.get("FNRP_ADULT")),
        max_days_supply=r.positive_int("max_days_supply", top.get("max_days_supply")),
        max_capsules_per_day=(
            None
            if "max_capsules_per_day" not in top
            else r.positive_int("max_capsules_per_day", top.get("max_capsules_per_day"), maximum=100)
        ),
        authorization_valid_days_frp=r.positive_int("authorization_valid_days.FRP", auth.get("FRP")),
        authorization_valid_days_other=r.positive_int("authorization_valid_days.others", auth.get("others")),
        confirmation_valid_hours=r.positive_int("confirmation_valid_hours", top.get("confirmation_valid_hours")),
        refill_max_remaining_days=r.positive_int("refill_max_remaining_days", top.get("refill_max_remaining_days")),
        pharmacy_certification_days=r.positive_int(
            "pharmacy_certification_days", top.get("pharmacy_certification_days")
        ),
        adult_age_years=r.positive_int("adult_age_years", top.get("adult_age_years"), maximum=150),
        products=_products(r, top.get("products")),
        clinical=None if "clinical" not in top else parse_clinical(top.get("clinical"), r.problems),
    )
    if r.problems:
        raise ProgramDefinitionError(source, r.problems)
    return version


def build_program(versions: Iterable[ProgramVersion]) -> Program:
    """Combine versions of one program; refuse mixed programs and duplicate versions or dates."""
    ordered = tuple(sorted(versions, key=lambda v: v.starts_at))
    problems: list[str] = []
    if not ordered:
        raise ProgramDefinitionError("program", ["no program version was found"])
    names = {v.program for v in ordered}
    if len(names) != 1:
        problems.append(f"versions name different programs: {sorted(names)}")
    labels = [v.version for v in ordered]
    if len(set(labels)) != len(labels):
        problems.append(f"duplicate version labels: {labels}")
    starts = [v.starts_at for v in ordered]
    if len(set(starts)) != len(starts):
        problems.append("two versions take effect at the same instant")
    if problems:
        raise ProgramDefinitionError("program", problems)
    return Program(name=ordered[0].program, versions=ordered)
