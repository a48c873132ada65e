"""Re-running a recorded decision from its stored snapshot (R-AUD-1, Program definition).

A decision record keeps its kind, the canonical JSON of its snapshot, the
program version it applied and its effective time. ``replay`` rebuilds the
snapshot and calls the same pure function; ``compare`` says whether the
result is the one recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import snapshots
from .authorizations import AuthorizationContext, decide_authorization
from .clock import isoformat_utc
from .decisions import Decision
from .dispenses import DispenseContext, decide_dispense
from .program import ProgramVersion

#: Decision kinds: the snapshot class and the decision function of each.
DECIDERS: dict[str, tuple[type, Callable[[Any, ProgramVersion, datetime], Decision]]] = {
    "authorization": (AuthorizationContext, decide_authorization),
    "dispense": (DispenseContext, decide_dispense),
}


def replay(kind: str, snapshot: Mapping[str, Any], program: ProgramVersion, now: datetime) -> Decision:
    """Decide again from a stored snapshot. Raises ``KeyError`` for an unknown kind
    and ``ValueError`` for a snapshot that does not fit its class."""
    cls, decide = DECIDERS[kind]
    return decide(snapshots.load(cls, snapshot), program, now)


@dataclass(frozen=True)
class ReplayResult:
    matches: bool
    recorded: dict[str, Any]
    replayed: dict[str, Any]


def summary(
    outcome: str,
    reasons: Sequence[Mapping[str, Any]],
    valid_until: datetime | str | None,
    warnings: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The comparable part of a decision: outcome, reason codes and rules in order, validity,
    and the warnings' codes, rules and severities in order (none before the clinical layer)."""
    if isinstance(valid_until, datetime):
        valid_until = isoformat_utc(valid_until)
    return {
        "outcome": outcome,
        "reasons": [{"code": r["code"], "rule": r["rule"]} for r in reasons],
        "valid_until": valid_until,
        "warnings": [{"code": w["code"], "rule": w["rule"], "severity": w["severity"]} for w in warnings],
    }


def compare(recorded: dict[str, Any], decision: Decision) -> ReplayResult:
    replayed = summary(
        decision.outcome,
        [r.as_dict() for r in decision.reasons],
        decision.valid_until,
        [w.summary() for w in decision.warnings],
    )
    return ReplayResult(recorded == replayed, recorded, replayed)
