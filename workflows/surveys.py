"""Patient surveys (R-SURV-1, R-SURV-2) and the prescriber survey (R-PRES-2,
R-CONTRA-1, R-CONTRA-2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .calendar import days_between, valid_until
from .patients import RiskCategory
from .program import ProgramVersion
from .reasons import Reason
from .rules import Code, Rule

#: R-SURV-2 questions, and which patients are asked them.
FRP_QUESTIONS = ("missed_period", "unprotected_intercourse", "missed_contraception")
MALE_QUESTIONS = ("unprotected_intercourse",)
ALL_QUESTIONS = ("shared_capsules", "donated_blood")


def questions_for(category: RiskCategory) -> tuple[str, ...]:
    """The survey questions that apply to ``category``.

    Males are asked about unprotected intercourse because R-CONTRA-2 requires
    condom use with any female who can get pregnant.
    """
    if category.is_frp:
        return FRP_QUESTIONS + ALL_QUESTIONS
    if category.is_male:
        return MALE_QUESTIONS + ALL_QUESTIONS
    return ALL_QUESTIONS


def answer_problems(category: RiskCategory, answers: Mapping[str, Any]) -> dict[str, list[str]]:
    """Answers to questions that do not apply to the category (422)."""
    applicable = set(questions_for(category))
    return {
        f"answers.{name}": [f"Not asked of a {category.value} patient."]
        for name in answers
        if name not in applicable and answers[name] is not None
    }


def noncompliance(category: RiskCategory, answers: Mapping[str, Any]) -> list[str]:
    """R-SURV-2: the answers that reveal non-compliance (each ``True`` flag that applies)."""
    return [name for name in questions_for(category) if answers.get(name) is True]


def survey_interval_days(category: RiskCategory, program: ProgramVersion) -> int:
    """R-SURV-1: ``FNRP_ADULT`` patients every ``survey_interval_days_fnrp_adult``;
    everyone else every ``survey_interval_days_default``."""
    if category is RiskCategory.FNRP_ADULT:
        return program.survey_interval_days_fnrp_adult
    return program.survey_interval_days_default


@dataclass(frozen=True)
class SurveyStatus:
    current: bool
    last_completed_at: datetime | None
    next_due_at: datetime | None
    reasons: tuple[Reason, ...]


def evaluate_survey(
    category: RiskCategory, last_completed_at: datetime | None, program: ProgramVersion, now: datetime
) -> SurveyStatus:
    """R-SURV-1: is the patient survey current at ``now`` (calendar days)?"""
    interval = survey_interval_days(category, program)
    if last_completed_at is None or last_completed_at > now:
        reason = Reason(Code.PATIENT_SURVEY_OVERDUE, Rule.R_SURV_1, "No patient survey has been completed.")
        return SurveyStatus(False, None, now, (reason,))
    due = valid_until(last_completed_at, interval, program.tz)
    age = days_between(last_completed_at, now, program.tz)
    if age > interval:
        reason = Reason(
            Code.PATIENT_SURVEY_OVERDUE,
            Rule.R_SURV_1,
            f"The last patient survey is {age} days old; one is required every {interval} days.",
        )
        return SurveyStatus(False, last_completed_at, due, (reason,))
    return SurveyStatus(True, last_completed_at, due, ())


def prescriber_survey_reasons(category: RiskCategory, survey: Mapping[str, Any]) -> list[Reason]:
    """R-PRES-2, R-CONTRA-1, R-CONTRA-2: what the prescriber survey must confirm."""
    reasons = []
    if survey.get("counseled_on_risks") is not True:
        reasons.append(
            Reason(
                Code.PRESCRIBER_SURVEY_INCOMPLETE,
                Rule.R_PRES_2,
                "The prescriber must confirm the patient was counseled on the risks.",
            )
        )
    if category.is_frp and survey.get("contraception_confirmed") is not True:
        reasons.append(
            Reason(
                Code.PRESCRIBER_SURVEY_INCOMPLETE,
                Rule.R_CONTRA_1,
                "The prescriber must confirm two reliable methods of contraception (or abstinence).",
            )
        )
    if category.is_male and survey.get("contraception_confirmed") is not True:
        reasons.append(
            Reason(
                Code.PRESCRIBER_SURVEY_INCOMPLETE,
                Rule.R_CONTRA_2,
                "The prescriber must confirm condom use with any female who can get pregnant.",
            )
        )
    return reasons
