"""Who is acting (defined in the domain: ``workflows.actors``)."""

from workflows.actors import SYSTEM, SYSTEM_ROLE, Actor, UserRole

__all__ = ["SYSTEM", "SYSTEM_ROLE", "Actor", "UserRole"]
