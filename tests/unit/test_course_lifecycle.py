"""The treatment course life cycle (CLINICAL_RULES.md): ``active → on_hold ⇄ active``, any →
``stopped``, dose changes while active; an illegal trigger is reported, never swallowed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.courses import CourseLifecycle, CourseReason, CourseStatus
from workflows.errors import IllegalTransition

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
HEME = CourseReason.HEMATOLOGIC


def test_hold_resume_at_a_lower_dose_then_stop():
    m = CourseLifecycle(CourseStatus.ACTIVE, 25.0)
    held = m.hold(HEME, "platelets", ("lab-1",), NOW)
    assert (held.event, held.from_state, held.to_state) == ("treatment.held", "active", "on_hold")
    assert held.details == {"reason_code": "hematologic", "reason": "platelets", "lab_result_ids": ["lab-1"]}
    resumed = m.resume(20.0, HEME, None, ("lab-2",), NOW)
    assert resumed.event == "treatment.resumed" and m.dose_mg == 20.0 and m.persisted() == {"dose_mg": 20.0}
    assert (resumed.details["from_dose_mg"], resumed.details["to_dose_mg"]) == (25.0, 20.0)
    changed = m.change_dose(15.0, CourseReason.RENAL, None, (), NOW)
    assert (changed.event, changed.from_state, changed.to_state) == ("treatment.dose_changed", "active", "active")
    stopped = m.stop(CourseReason.PATIENT_REQUEST, None, NOW)
    assert stopped.to_state == "stopped" and m.state == "stopped"


def test_resume_without_a_dose_keeps_it():
    m = CourseLifecycle(CourseStatus.ON_HOLD, 10.0)
    change = m.resume(None, None, None, (), NOW)
    assert m.dose_mg == 10.0 and change.details["to_dose_mg"] == 10.0 and change.details["reason_code"] is None


@pytest.mark.parametrize(
    "status, command",
    [
        (CourseStatus.ON_HOLD, lambda m: m.hold(HEME, None, (), NOW)),
        (CourseStatus.ACTIVE, lambda m: m.resume(None, None, None, (), NOW)),
        (CourseStatus.ON_HOLD, lambda m: m.change_dose(10.0, HEME, None, (), NOW)),
        (CourseStatus.STOPPED, lambda m: m.stop(HEME, None, NOW)),
        (CourseStatus.STOPPED, lambda m: m.resume(None, None, None, (), NOW)),
        (CourseStatus.STOPPED, lambda m: m.hold(HEME, None, (), NOW)),
    ],
)
def test_illegal_triggers_raise(status, command):
    m = CourseLifecycle(status, 25.0)
    with pytest.raises(IllegalTransition):
        command(m)
    assert m.status is status and m.dose_mg == 25.0
