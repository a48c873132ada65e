"""The log scan of issue 18 (must-show 4) finds what it is meant to find, and only that."""

from __future__ import annotations

from tests.logscan import find_leaks


def test_names_and_birth_dates_are_found_as_whole_words():
    lines = [
        "2026-11-27T10:00:00+0000 INFO rems.access: request path=/api/v1/patients status=201",
        "2026-11-27T10:00:01+0000 ERROR rems: enroll failed for Quinlan born 1960-04-02",
        "2026-11-27T10:00:02+0000 INFO rems: Quinlanson is not Quinlan's namesake",
    ]
    leaks = find_leaks(lines, {"Quinlan", "1960-04-02", "Zed"})
    assert [term for term, _line in leaks] == ["Quinlan", "Quinlan"]
    assert find_leaks(lines[:1], {"Quinlan", "1960-04-02"}) == []


def test_a_birth_date_equal_to_a_log_timestamp_date_is_not_a_leak():
    from datetime import UTC, datetime

    today = datetime.now(UTC).date().isoformat()
    assert find_leaks([f"{today}T10:00:00+0000 INFO x: y"], {today}) == []
    assert find_leaks([f"{today}T10:00:00+0000 INFO x: dob=1990-03-03"], {today, "1990-03-03"})
