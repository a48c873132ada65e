"""The program definition: every parameter present, validated, versioned by date."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest

from config.programs import PROGRAMS_DIR, load_program
from tests.helpers import utc
from workflows.errors import NoProgramInForce, ProgramDefinitionError
from workflows.program import build_program, parse_program_version

SHIPPED = sorted(PROGRAMS_DIR.glob("lenalidomide-*.toml"))[0]


def shipped() -> dict:
    with SHIPPED.open("rb") as handle:
        return tomllib.load(handle)


def test_shipped_program_has_the_rule_table_defaults():
    v = load_program().in_force(utc(2026, 6, 1))
    assert v.initial_test_1_window_days == (10, 14)
    assert v.initial_test_2_window_hours == 24
    assert v.test_max_sensitivity_miu_ml == 50
    assert (v.monitoring.first_phase_days, v.monitoring.first_phase_interval_days) == (28, 7)
    assert (v.monitoring.regular_interval_days, v.monitoring.irregular_interval_days) == (28, 14)
    assert (v.survey_interval_days_default, v.survey_interval_days_fnrp_adult) == (28, 182)
    assert v.max_days_supply == 28
    assert (v.authorization_valid_days_frp, v.authorization_valid_days_other) == (7, 30)
    assert v.confirmation_valid_hours == 24
    assert v.refill_max_remaining_days == 7
    assert v.pharmacy_certification_days == 730
    assert v.adult_age_years == 18


def test_missing_unknown_and_bad_values_are_all_reported():
    data = shipped()
    del data["max_days_supply"]
    data["monitoring"]["first_phase_days"] = -3
    data["surprise"] = 1
    data["timezone"] = "Mars/Olympus"
    data["initial_test_1_window_days"] = [14, 10]
    with pytest.raises(ProgramDefinitionError) as info:
        parse_program_version(data, "bad.toml")
    text = str(info.value)
    for fragment in (
        "max_days_supply is missing",
        "monitoring.first_phase_days",
        "surprise is not a known parameter",
        "Mars/Olympus",
        "initial_test_1_window_days",
    ):
        assert fragment in text


def test_booleans_are_not_numbers():
    data = shipped()
    data["confirmation_valid_hours"] = True
    with pytest.raises(ProgramDefinitionError):
        parse_program_version(data)


def test_version_in_force_changes_at_midnight_in_the_program_zone():
    first = parse_program_version(shipped())
    later_data = shipped()
    later_data.update(
        version="2027.1",
        effective_from=first.effective_from.replace(year=2027),
        timezone="America/New_York",
        max_days_supply=21,
    )
    later = parse_program_version(later_data)
    program = build_program([later, first])
    boundary = later.starts_at  # 2027-01-01T00:00-05:00 == 05:00 UTC
    assert boundary == utc(2027, 1, 1, 5)
    assert program.in_force(boundary - timedelta(microseconds=1)).version == first.version
    assert program.in_force(boundary).version == "2027.1"
    assert program.version("2027.1").max_days_supply == 21


def test_nothing_in_force_before_the_first_version():
    with pytest.raises(NoProgramInForce):
        load_program().in_force(utc(2000, 1, 1))


def test_duplicate_versions_are_refused():
    v = parse_program_version(shipped())
    with pytest.raises(ProgramDefinitionError):
        build_program([v, v])


def test_load_program_reports_the_file(tmp_path):
    (tmp_path / "lenalidomide-x.toml").write_text("program = 'lenalidomide'\nversion = [\n")
    with pytest.raises(ProgramDefinitionError) as info:
        load_program(tmp_path)
    assert "lenalidomide-x.toml" in str(info.value)
    with pytest.raises(ProgramDefinitionError):
        load_program(tmp_path / "empty")
