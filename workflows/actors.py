"""Who is acting: the authenticated caller, or the system itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class UserRole(str, Enum):
    """What a user may do; every user has exactly one role."""

    ADMIN = "admin"
    PRESCRIBER = "prescriber"
    PHARMACIST = "pharmacist"
    AUDITOR = "auditor"


#: Role recorded for actions taken by the service's own command line and jobs.
SYSTEM_ROLE = "system"


@dataclass(frozen=True)
class Actor:
    """A snapshot of the caller taken when the request was authenticated."""

    user_id: uuid.UUID | None
    role: str
    prescriber_id: uuid.UUID | None = None
    pharmacy_id: uuid.UUID | None = None
    training_completed_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        """Program staff: an admin user, or the service's own command line."""
        return self.role in (UserRole.ADMIN.value, SYSTEM_ROLE)

    def as_audit(self) -> dict[str, str | None]:
        return {"user_id": str(self.user_id) if self.user_id else None, "role": self.role}


#: The actor of command-line and background work.
SYSTEM = Actor(user_id=None, role=SYSTEM_ROLE)
