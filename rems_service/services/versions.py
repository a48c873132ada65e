"""The program version a use case runs under."""

from __future__ import annotations

from datetime import datetime

from workflows.errors import NoProgramInForce
from workflows.program import Program, ProgramVersion

from .errors import Unavailable


class NotInForce(Unavailable):
    """No program version is in force at the request's time (503: nothing can be decided).
    A front that let the caller choose that time (the sandbox clock) reports it as the
    caller's input instead (422)."""


def version_at(program: Program, now: datetime) -> ProgramVersion:
    """The program version in force at ``now``; ``NotInForce`` (503) before the first.

    Nothing is decided or changed without the rules that govern it.
    """
    try:
        return program.in_force(now)
    except NoProgramInForce as exc:
        raise NotInForce(str(exc), {"X-Rems-Now": ["No program version is in force at this time."]}) from None
