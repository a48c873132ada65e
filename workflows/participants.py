"""Prescriber (R-PRES-1) and pharmacy (R-PHA-1, R-PHA-2) certification life cycles."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from .clock import ensure_utc
from .lifecycle import Lifecycle, StateChange
from .program import ProgramVersion


class PrescriberStatus(str, Enum):
    PENDING = "pending"
    CERTIFIED = "certified"
    SUSPENDED = "suspended"
    DECERTIFIED = "decertified"


class PharmacyStatus(str, Enum):
    PENDING = "pending"
    CERTIFIED = "certified"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    DECERTIFIED = "decertified"


#: R-PRES-1: what a prescriber attests to when certifying.
PRESCRIBER_ATTESTATIONS = (
    "reviewed_prescribing_information",
    "completed_education",
    "agrees_to_counsel_patients",
    "agrees_to_report_pregnancies",
)

#: R-PHA-1: what a pharmacy's authorized representative attests to.
PHARMACY_ATTESTATIONS = (
    "staff_trained",
    "dispensing_procedures_in_place",
    "records_available_for_audit",
)


class PrescriberCertification(Lifecycle):
    """R-PRES-1: ``pending → certified ⇄ suspended``, any → ``decertified`` (final)."""

    SUBJECT = "prescriber"
    PERSISTED = ("certified_at",)
    STATES = [s.value for s in PrescriberStatus]
    TRANSITIONS = [
        {"trigger": "certify", "source": "pending", "dest": "certified", "conditions": "_attested"},
        {"trigger": "suspend", "source": "certified", "dest": "suspended"},
        {"trigger": "reinstate", "source": "suspended", "dest": "certified"},
        {"trigger": "decertify", "source": ["pending", "certified", "suspended"], "dest": "decertified"},
    ]
    EVENTS = {
        "certify": "prescriber.certified",
        "suspend": "prescriber.suspended",
        "reinstate": "prescriber.reinstated",
        "decertify": "prescriber.decertified",
    }

    def __init__(self, status: str, certified_at: datetime | None = None):
        super().__init__(status)
        self.certified_at = certified_at

    @property
    def is_certified(self) -> bool:
        return self.state == PrescriberStatus.CERTIFIED.value

    def _attested(self, attestations: dict[str, Any]) -> bool:
        return self._require_true("attestations", attestations, PRESCRIBER_ATTESTATIONS)

    def certify(self, attestations: dict[str, Any], now: datetime) -> StateChange:
        change = self._fire(
            "certify", now, {"attestations": sorted(PRESCRIBER_ATTESTATIONS)}, attestations=attestations
        )
        self.certified_at = ensure_utc(now)
        return change

    def suspend(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire("suspend", now, {"reason": reason})

    def reinstate(self, now: datetime) -> StateChange:
        return self._fire("reinstate", now)

    def decertify(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire("decertify", now, {"reason": reason})


def effective_pharmacy_status(status: str, certified_until: datetime | None, now: datetime) -> str:
    """R-PHA-2: a certified pharmacy whose ``certified_until`` has passed is expired.

    The stored status may still say ``certified`` (the sweep that mirrors
    expiries may not have run): the answer is computed from the timestamp.
    """
    if status == PharmacyStatus.CERTIFIED.value and certified_until is not None and ensure_utc(now) >= certified_until:
        return PharmacyStatus.EXPIRED.value
    return status


class PharmacyCertification(Lifecycle):
    """R-PHA-1/2: ``pending → certified ⇄ suspended``, ``certified → expired``,
    certification again from ``expired`` or ``certified`` (renewal), any →
    ``decertified`` (final). Constructed in its *effective* status at ``now``.
    """

    SUBJECT = "pharmacy"
    PERSISTED = ("certified_at", "certified_until")
    STATES = [s.value for s in PharmacyStatus]
    TRANSITIONS = [
        {
            "trigger": "certify",
            "source": ["pending", "certified", "expired"],
            "dest": "certified",
            "conditions": "_attested",
        },
        {"trigger": "suspend", "source": "certified", "dest": "suspended"},
        {"trigger": "reinstate", "source": "suspended", "dest": "certified"},
        {"trigger": "expire", "source": "certified", "dest": "expired"},
        {"trigger": "decertify", "source": ["pending", "certified", "suspended", "expired"], "dest": "decertified"},
    ]
    EVENTS = {
        "certify": "pharmacy.certified",
        "suspend": "pharmacy.suspended",
        "reinstate": "pharmacy.reinstated",
        "expire": "pharmacy.certification_expired",
        "decertify": "pharmacy.decertified",
    }

    def __init__(
        self,
        status: str,
        now: datetime,
        certified_at: datetime | None = None,
        certified_until: datetime | None = None,
    ):
        super().__init__(effective_pharmacy_status(status, certified_until, now))
        self.certified_at = certified_at
        self.certified_until = certified_until

    def _attested(self, attestations: dict[str, Any]) -> bool:
        return self._require_true("attestations", attestations, PHARMACY_ATTESTATIONS)

    def certify(self, attestations: dict[str, Any], program: ProgramVersion, now: datetime) -> StateChange:
        """Certify or renew: the certification runs ``pharmacy_certification_days`` from ``now``."""
        renewal = self.state != PharmacyStatus.PENDING.value
        until = program.pharmacy_certified_until(now)
        change = self._fire(
            "certify",
            now,
            {
                "attestations": sorted(PHARMACY_ATTESTATIONS),
                "renewal": renewal,
                "certified_until": until,
                "previous_certified_until": self.certified_until,
            },
            attestations=attestations,
        )
        self.certified_at = ensure_utc(now)
        self.certified_until = until
        return change

    def suspend(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire("suspend", now, {"reason": reason})

    def reinstate(self, now: datetime) -> StateChange:
        return self._fire("reinstate", now)

    def expire(self, now: datetime) -> StateChange:
        return self._fire("expire", now, {"certified_until": self.certified_until})

    def decertify(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire("decertify", now, {"reason": reason})
