"""Errors the domain raises. The service layer maps them onto HTTP codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error the domain raises on purpose."""


class IllegalTransition(DomainError):
    """A trigger is not allowed from the object's current state (HTTP 409)."""

    def __init__(self, subject: str, trigger: str, current_state: str):
        self.subject = subject
        self.trigger = trigger
        self.current_state = current_state
        super().__init__(f"cannot {trigger} a {subject} whose status is {current_state!r}")


class GuardFailed(DomainError):
    """A transition's guard refused it; ``field_errors`` name what is missing (HTTP 422)."""

    def __init__(self, message: str, field_errors: dict[str, list[str]] | None = None):
        self.field_errors = field_errors or {}
        super().__init__(message)


class ProgramDefinitionError(DomainError):
    """A program definition is malformed or incomplete; the service refuses to start."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class NoProgramInForce(DomainError):
    """No program version is in force at the requested time (fail closed: 503)."""
