"""Changes of authorizations and their dispense confirmations that several use cases
share: the status at ``now``, settling a lapsed confirmation, voiding (R-PREG-4).

Every function works on rows the caller has already locked in the repository's
order (patient, then authorization, then dispense) inside its unit of work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rems_service.db.models import Authorization, Dispense, Patient
from rems_service.db.repository import Repository, authorization_subject, dispense_subject
from workflows.actors import Actor
from workflows.authorizations import OPEN_STATUSES, AuthorizationLifecycle, AuthorizationStatus, effective_status
from workflows.dispenses import DispenseLifecycle, DispenseStatus, effective_dispense_status
from workflows.program import ProgramVersion
from workflows.rules import Rule


def effective(row: Authorization, holding: Dispense | None, now: datetime) -> AuthorizationStatus:
    """The authorization's status at ``now`` given its live confirmation, from timestamps."""
    return effective_status(row.status, row.expires_at, holding.confirmation_expires_at if holding else None, now)


def settle(
    repo: Repository, actor: Actor, holding: Dispense | None, now: datetime, version: ProgramVersion
) -> Dispense | None:
    """Mirror a confirmation that lapsed by time into its status (so it no longer
    holds its authorization) and return it if it is still live."""
    if holding is None:
        return None
    if effective_dispense_status(holding.status, holding.confirmation_expires_at, now) is DispenseStatus.LAPSED:
        machine = DispenseLifecycle(holding.status.value)
        change = machine.lapse(now, {"rule": Rule.R_DISP_2.value})
        repo.record_change(actor, holding, change, dispense_subject(holding), version.version)
        return None
    return holding


def void_locked(
    repo: Repository,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    row: Authorization,
    reason: str,
    details: dict[str, Any],
) -> None:
    """Void ``row`` (locked by the caller) and its live confirmation, if any.
    Raises the domain's ``IllegalTransition`` when ``row`` is no longer open."""
    holding = settle(repo, actor, repo.holding_dispense(row.id, lock=True), now, version)
    change = AuthorizationLifecycle(effective(row, holding, now).value).void(reason, now, details)
    if holding is not None:
        dispense_change = DispenseLifecycle(holding.status.value).void(
            reason, now, {"authorization_number": row.number, **details}
        )
        repo.record_change(actor, holding, dispense_change, dispense_subject(holding), version.version)
    repo.record_change(actor, row, change, authorization_subject(row), version.version)


def void_open_for_patient(
    repo: Repository,
    actor: Actor,
    now: datetime,
    version: ProgramVersion,
    patient: Patient,
    reason: str,
    details: dict[str, Any],
) -> int:
    """R-PREG-4: void every open authorization of ``patient`` (locked by the caller)
    and every confirmation not yet handed over. Returns how many were voided."""
    voided = 0
    for row in repo.lock_open_authorizations(patient.id):
        if effective(row, repo.holding_dispense(row.id), now) in OPEN_STATUSES:
            void_locked(repo, actor, now, version, row, reason, details)
            voided += 1
    return voided
