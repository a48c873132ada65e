"""Readiness: can the service reach what its answers depend on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from rems_service.db.uow import UnitOfWork

log = logging.getLogger(__name__)

OK, UNAVAILABLE, NOT_CONFIGURED = "ok", "unavailable", "not configured (jobs run inline)"


#: Dependencies without which no decision can be made: any of them down takes the instance out.
#: Redis is not one: with it down, decisions still work (the outbox keeps events, rate limits
#: fall back to each process's memory), so the instance reports itself degraded but stays in.
ESSENTIAL = ("database",)


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(self.checks.get(name) == OK for name in ESSENTIAL)

    @property
    def degraded(self) -> bool:
        """Ready, but something non-essential is down."""
        return self.ready and any(value not in (OK, NOT_CONFIGURED) for value in self.checks.values())


def readiness(uow_factory: Callable[[], UnitOfWork], redis_ping: Callable[[], object] | None) -> Readiness:
    """The database answers a query; Redis answers a ping when a queue is configured
    (``redis_ping`` is None without one). The database down means not ready; Redis down, degraded."""
    checks: dict[str, str] = {}
    try:
        with uow_factory() as uow:
            uow.repo.ping()
        checks["database"] = OK
    except Exception as exc:
        log.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        checks["database"] = UNAVAILABLE
    if redis_ping is None:
        checks["redis"] = NOT_CONFIGURED
    else:
        try:
            redis_ping()
            checks["redis"] = OK
        except Exception as exc:
            log.warning("readiness: redis unreachable", extra={"error": type(exc).__name__})
            checks["redis"] = UNAVAILABLE
    return Readiness(checks)
