"""What every decision shares: its result, the patient facts it reads, and the
eligibility check of R-PAT-2.

A decision function takes a frozen snapshot of everything it reads, the
program version and ``now``, and returns a ``Decision`` listing *every*
failing reason. It never reads a clock, a database or a status that only a
background job would have set: windows are computed from the snapshot's
timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .advisories import Advice, ClinicalFacts, ClinicalRequest, ClinicalWarning, advise
from .audit import OUTCOME_APPROVED, OUTCOME_DENIED
from .patients import ELIGIBLE_STATUSES, MenstrualCycle, PatientStatus, RiskCategory
from .program import ProgramVersion
from .reasons import Reason
from .rules import Code, Rule
from .testing import PregnancyTest, PregnancyTestingInputs


@dataclass(frozen=True)
class Decision:
    """The outcome of a decision.

    ``valid_until`` is set on approvals only: when the authorization expires
    (R-AUTH-3) or the dispense confirmation lapses (R-DISP-2).
    """

    outcome: str
    reasons: tuple[Reason, ...]
    valid_until: datetime | None = None
    #: CLINICAL_RULES.md's advisories: they never deny by themselves (R-CYCLE-3 and R-ACK-1
    #: are reasons).
    warnings: tuple[ClinicalWarning, ...] = ()

    @property
    def approved(self) -> bool:
        return self.outcome == OUTCOME_APPROVED

    @classmethod
    def of(cls, reasons: list[Reason], valid_until: datetime, warnings: tuple[ClinicalWarning, ...] = ()) -> Decision:
        """Approve with ``valid_until`` when nothing fails; deny with every reason otherwise."""
        if reasons:
            return cls(OUTCOME_DENIED, tuple(reasons), None, warnings)
        return cls(OUTCOME_APPROVED, (), valid_until, warnings)


@dataclass(frozen=True)
class PatientFacts:
    """What a decision reads about the patient: never a name or a date of birth."""

    patient_id: str
    rems_patient_id: str
    prescriber_id: str
    risk_category: RiskCategory
    menstrual_cycle: MenstrualCycle | None
    status: PatientStatus
    therapy_started_at: datetime | None
    tests: tuple[PregnancyTest, ...]

    def testing_inputs(self) -> PregnancyTestingInputs:
        return PregnancyTestingInputs(self.risk_category, self.menstrual_cycle, self.therapy_started_at, self.tests)


_INELIGIBLE_WHY = {
    PatientStatus.HALTED: (
        "halted after a positive pregnancy test; an administrator must review and reinstate the patient"
    ),
    PatientStatus.NEEDS_INTERVENTION: (
        "waiting for intervention after a survey revealed non-compliance; an administrator must resolve it"
    ),
    PatientStatus.DISCONTINUED: "discontinued from therapy",
}

_INELIGIBLE_NEXT = {
    PatientStatus.HALTED: (
        "A program administrator must review the pregnancy report and reinstate the patient; until then no "
        "authorization or dispense is possible (the prescriber can see the patient's status)."
    ),
    PatientStatus.NEEDS_INTERVENTION: (
        "A program administrator must resolve the intervention opened by the patient survey; the prescriber "
        "should contact the program. Then ask again."
    ),
    PatientStatus.DISCONTINUED: (
        "Discontinuation is final: nothing more can be authorized or dispensed under this enrollment; the "
        "prescriber must enroll the patient again if therapy is to resume."
    ),
}


def eligibility_reasons(status: PatientStatus, what: str) -> list[Reason]:
    """R-PAT-2: only ``enrolled`` and ``on_therapy`` patients may get ``what``."""
    if status.value in ELIGIBLE_STATUSES:
        return []
    why = _INELIGIBLE_WHY.get(status, f"in status '{status.value}'")
    next_step = _INELIGIBLE_NEXT.get(
        status, "Only an enrolled or on-therapy patient is eligible; a program administrator must review the patient."
    )
    return [
        Reason(Code.PATIENT_NOT_ELIGIBLE, Rule.R_PAT_2, f"The patient is {why}; no {what} can be given.", next_step)
    ]


def clinical_advice(
    clinical: ClinicalFacts | None, request: ClinicalRequest, program: ProgramVersion, now: datetime, who: str
) -> Advice:
    """CLINICAL_RULES.md's warnings and refusals, or nothing: for a patient without a course,
    a snapshot stored before the clinical layer, or a program version without a ``clinical`` table."""
    if clinical is None or program.clinical is None:
        return Advice((), ())
    return advise(clinical, request, program.clinical, program.tz, now, who)
