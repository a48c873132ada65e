"""When a patient's next pregnancy test and survey are due, mirrored for reminders.

Decisions never read these columns: they recompute both from the tests and
surveys themselves. The sweeps read them to remind prescribers in time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rems_service.db.models import Patient
from rems_service.db.repository import Repository
from rems_service.db.uow import UnitOfWork
from workflows.program import Program, ProgramVersion
from workflows.surveys import evaluate_survey
from workflows.testing import Purpose, evaluate_testing

from .versions import version_at


def refresh_reminders(repo: Repository, row: Patient, version: ProgramVersion, now: datetime) -> None:
    """Recompute ``row.next_test_due_at`` and ``row.next_survey_due_at`` at ``now``."""
    facts = repo.patient_facts(row)
    testing = evaluate_testing(facts.testing_inputs(), version, now, Purpose.DISPENSE)
    row.next_test_due_at = testing.next_test_due_at if row.risk_category.is_frp else None
    row.next_survey_due_at = evaluate_survey(row.risk_category, repo.last_survey_at(row.id), version, now).next_due_at
    repo.add(row)


def refresh_all(uow_factory: Callable[[], UnitOfWork], program: Program, now: datetime, batch: int = 500) -> int:
    """Recompute every patient's reminder mirrors, ``batch`` patients per unit of work;
    return how many. For mirrors computed under earlier rules (an incomplete survey
    that counted before R-SURV-3): decisions never read them, reminders do."""
    version = version_at(program, now)
    done, after = 0, None
    while True:
        with uow_factory() as uow:
            ids = uow.repo.patient_ids_after(after, batch)
            for patient_id in ids:
                row = uow.repo.get(Patient, patient_id, lock=True)
                if row is not None:
                    refresh_reminders(uow.repo, row, version, now)
            uow.commit()
        if not ids:
            return done
        done += len(ids)
        after = ids[-1]
