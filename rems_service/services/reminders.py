"""When a patient's next pregnancy test and survey are due, mirrored for reminders.

Decisions never read these columns: they recompute both from the tests and
surveys themselves. The sweeps read them to remind prescribers in time.
"""

from __future__ import annotations

from datetime import datetime

from rems_service.db.models import Patient
from rems_service.db.repository import Repository
from workflows.program import ProgramVersion
from workflows.surveys import evaluate_survey
from workflows.testing import Purpose, evaluate_testing


def refresh_reminders(repo: Repository, row: Patient, version: ProgramVersion, now: datetime) -> None:
    """Recompute ``row.next_test_due_at`` and ``row.next_survey_due_at`` at ``now``."""
    facts = repo.patient_facts(row)
    testing = evaluate_testing(facts.testing_inputs(), version, now, Purpose.DISPENSE)
    row.next_test_due_at = testing.next_test_due_at if row.risk_category.is_frp else None
    row.next_survey_due_at = evaluate_survey(row.risk_category, repo.last_survey_at(row.id), version, now).next_due_at
    repo.add(row)
