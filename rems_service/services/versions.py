"""The program version a use case runs under."""

from __future__ import annotations

from datetime import datetime

from workflows.errors import NoProgramInForce
from workflows.program import Program, ProgramVersion

from .errors import Unavailable


def version_at(program: Program, now: datetime) -> ProgramVersion:
    """The program version in force at ``now``; ``Unavailable`` (503) before the first.

    Nothing is decided or changed without the rules that govern it.
    """
    try:
        return program.in_force(now)
    except NoProgramInForce as exc:
        raise Unavailable(str(exc)) from None
