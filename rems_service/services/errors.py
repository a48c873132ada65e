"""Errors a use case raises; the web layer maps each onto its HTTP status."""

from __future__ import annotations

from workflows.errors import GuardFailed, IllegalTransition


class ServiceError(Exception):
    """Base: ``status`` is the HTTP status, ``field_errors`` name bad fields."""

    status = 400

    def __init__(self, message: str, field_errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class NotFound(ServiceError):
    """The object does not exist or is not visible to the caller (404)."""

    status = 404


class Forbidden(ServiceError):
    """The caller's role may not perform this operation (403)."""

    status = 403


class Conflict(ServiceError):
    """The object's state or a uniqueness rule forbids the request (409)."""

    status = 409


class Invalid(ServiceError):
    """The request is well formed but its values are not acceptable (422)."""

    status = 422


class Unavailable(ServiceError):
    """Something the answer depends on cannot be read; nothing was decided (503)."""

    status = 503


def from_domain_error(exc: Exception) -> Exception:
    """Map a domain refusal onto the service error the fronts understand: an illegal
    transition is a ``Conflict`` (409), a refused guard ``Invalid`` (422)."""
    if isinstance(exc, IllegalTransition):
        return Conflict(
            f"Cannot {exc.trigger} this {exc.subject}: its current status is '{exc.current_state}'.",
            {"status": [f"Current status is '{exc.current_state}'."]},
        )
    if isinstance(exc, GuardFailed):
        return Invalid(str(exc), exc.field_errors)
    return exc
