"""What operators watch: the outbox's backlog (for ``/metrics``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rems_service.db.uow import UnitOfWork


@dataclass(frozen=True)
class OutboxState:
    #: Events written but not yet relayed.
    unsent: int
    #: Age of the oldest of them, in seconds (0 when none waits).
    lag_seconds: float


def outbox_state(uow: UnitOfWork, now: datetime) -> OutboxState:
    """How far the relay is behind, read in one statement."""
    with uow:
        unsent, oldest = uow.outbox.unsent_state()
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return OutboxState(unsent, lag)
