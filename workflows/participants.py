"""Prescriber (R-PRES-1) and pharmacy (R-PHA-1, R-PHA-2) certification life cycles."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from .clock import ensure_utc
from .lifecycle import Lifecycle, Move, StateChange, command
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
    STATUS = PrescriberStatus
    PERSISTED = ("certified_at",)

    def __init__(self, status: PrescriberStatus | str, certified_at: datetime | None = None):
        super().__init__(status)
        self.certified_at = certified_at

    def _attested(self, attestations: dict[str, Any]) -> bool:
        return self._require_true("attestations", attestations, PRESCRIBER_ATTESTATIONS)

    @command(
        "prescriber.certified",
        Move(PrescriberStatus.PENDING, PrescriberStatus.CERTIFIED, conditions=("_attested",)),
    )
    def certify(self, attestations: dict[str, Any], now: datetime) -> StateChange:
        change = self._fire(now, {"attestations": sorted(PRESCRIBER_ATTESTATIONS)}, attestations=attestations)
        self.certified_at = ensure_utc(now)
        return change

    @command("prescriber.suspended", Move(PrescriberStatus.CERTIFIED, PrescriberStatus.SUSPENDED))
    def suspend(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})

    @command("prescriber.reinstated", Move(PrescriberStatus.SUSPENDED, PrescriberStatus.CERTIFIED))
    def reinstate(self, now: datetime) -> StateChange:
        return self._fire(now)

    @command(
        "prescriber.decertified",
        Move(
            (PrescriberStatus.PENDING, PrescriberStatus.CERTIFIED, PrescriberStatus.SUSPENDED),
            PrescriberStatus.DECERTIFIED,
        ),
    )
    def decertify(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})


def effective_pharmacy_status(status: PharmacyStatus | str, certified_until: datetime | None, now: datetime) -> str:
    """R-PHA-2: a certified pharmacy whose ``certified_until`` has passed is expired.

    The stored status may still say ``certified`` (the sweep that mirrors
    expiries may not have run): the answer is computed from the timestamp.
    """
    status = PharmacyStatus(status)
    if status is PharmacyStatus.CERTIFIED and certified_until is not None and ensure_utc(now) >= certified_until:
        return PharmacyStatus.EXPIRED.value
    return status.value


class PharmacyCertification(Lifecycle):
    """R-PHA-1/2: ``pending → certified ⇄ suspended``, ``certified → expired``,
    certification again from ``expired`` or ``certified`` (renewal), any →
    ``decertified`` (final). Constructed in its *effective* status at ``now``.
    """

    SUBJECT = "pharmacy"
    STATUS = PharmacyStatus
    PERSISTED = ("certified_at", "certified_until")

    def __init__(
        self,
        status: PharmacyStatus | str,
        now: datetime | None,
        certified_at: datetime | None = None,
        certified_until: datetime | None = None,
    ):
        """In the effective status at ``now``; with ``now=None`` in the stored status, to record
        a change time has already made (the expiry sweep mirrors ``certified → expired``)."""
        super().__init__(status if now is None else effective_pharmacy_status(status, certified_until, now))
        self.certified_at = certified_at
        self.certified_until = certified_until

    def _attested(self, attestations: dict[str, Any]) -> bool:
        return self._require_true("attestations", attestations, PHARMACY_ATTESTATIONS)

    @command(
        "pharmacy.certified",
        Move(
            (PharmacyStatus.PENDING, PharmacyStatus.CERTIFIED, PharmacyStatus.EXPIRED),
            PharmacyStatus.CERTIFIED,
            conditions=("_attested",),
        ),
    )
    def certify(self, attestations: dict[str, Any], program: ProgramVersion, now: datetime) -> StateChange:
        """Certify or renew: the certification runs ``pharmacy_certification_days`` from ``now``."""
        renewal = self.status is not PharmacyStatus.PENDING
        until = program.pharmacy_certified_until(now)
        change = self._fire(
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

    @command("pharmacy.suspended", Move(PharmacyStatus.CERTIFIED, PharmacyStatus.SUSPENDED))
    def suspend(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})

    @command("pharmacy.reinstated", Move(PharmacyStatus.SUSPENDED, PharmacyStatus.CERTIFIED))
    def reinstate(self, now: datetime) -> StateChange:
        return self._fire(now)

    def _ended(self, now: datetime) -> bool:
        """Guard of ``expire``: the certification's end has passed at ``now``."""
        ended = self.certified_until is not None and ensure_utc(now) >= self.certified_until
        if not ended:
            self._guard_errors["certified_until"] = ["The certification has not ended yet."]
        return ended

    @command(
        "pharmacy.certification_expired",
        Move(PharmacyStatus.CERTIFIED, PharmacyStatus.EXPIRED, conditions=("_ended",)),
    )
    def expire(self, now: datetime) -> StateChange:
        """R-PHA-2: record that the certification ended (from the stored ``certified``)."""
        return self._fire(now, {"certified_until": self.certified_until}, now=now)

    @command(
        "pharmacy.decertified",
        Move(
            (PharmacyStatus.PENDING, PharmacyStatus.CERTIFIED, PharmacyStatus.SUSPENDED, PharmacyStatus.EXPIRED),
            PharmacyStatus.DECERTIFIED,
        ),
    )
    def decertify(self, reason: str | None, now: datetime) -> StateChange:
        return self._fire(now, {"reason": reason})
