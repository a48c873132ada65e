"""Patient surveys (R-SURV-1 to R-SURV-3) and the prescriber survey (R-PRES-2,
R-CONTRA-1, R-CONTRA-2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .calendar import days_between, last_valid_day, local_date, valid_until
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


def required_questions(category: RiskCategory) -> tuple[str, ...]:
    """R-SURV-3: the questions that must be answered for a survey of ``category`` to count.

    Every question of the category, except that a male's answer on unprotected
    intercourse is optional (the catalogue lets males answer it; it does not
    require it).
    """
    if category.is_male:
        return ALL_QUESTIONS
    return questions_for(category)


def unanswered(category: RiskCategory, answers: Mapping[str, Any]) -> list[str]:
    """R-SURV-3: the required questions not answered ``true`` or ``false``."""
    return [name for name in required_questions(category) if not isinstance(answers.get(name), bool)]


def is_complete(category: RiskCategory, answers: Mapping[str, Any]) -> bool:
    """R-SURV-3: a survey counts (for R-SURV-1) only when every required question is answered."""
    return not unanswered(category, answers)


def answer_problems(category: RiskCategory, answers: Mapping[str, Any]) -> dict[str, list[str]]:
    """Why a survey cannot be recorded (422), by field: answers to questions that do not
    apply to the category, and (R-SURV-3) every required question left unanswered."""
    applicable = set(questions_for(category))
    problems = {
        f"answers.{name}": [f"Not asked of a {category.value} patient."]
        for name in answers
        if name not in applicable and answers[name] is not None
    }
    for name in unanswered(category, answers):
        problems[f"answers.{name}"] = [
            f"Required for a {category.value} patient: answer true or false "
            f"(a survey with an unanswered question does not count, {Rule.R_SURV_3.value})."
        ]
    return problems


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
    """``next_due_at`` is the instant the last survey stops counting (``now`` when none
    counts); ``next_due_on`` is the last calendar day (program zone) on which a new
    survey must be completed to keep one current: the last survey's last valid day,
    or today when none counts."""

    current: bool
    last_completed_at: datetime | None
    next_due_at: datetime | None
    reasons: tuple[Reason, ...]
    next_due_on: date | None = None


#: What a prescriber records to make the survey current (R-SURV-1, R-SURV-3).
_RECORD_SURVEY = (
    "The prescriber must record a new patient survey with every question answered true or false "
    f"({Rule.R_SURV_3.value}), completed on or before the day of the request"
)


def evaluate_survey(
    category: RiskCategory, last_completed_at: datetime | None, program: ProgramVersion, now: datetime
) -> SurveyStatus:
    """R-SURV-1: is the patient survey current at ``now`` (calendar days)?

    ``last_completed_at`` is the newest *complete* survey's (R-SURV-3).
    """
    interval = survey_interval_days(category, program)
    today = local_date(now, program.tz)
    if last_completed_at is None or last_completed_at > now:
        reason = Reason(
            Code.PATIENT_SURVEY_OVERDUE,
            Rule.R_SURV_1,
            "No complete patient survey is on record.",
            f"{_RECORD_SURVEY}; it then counts for {interval} days.",
        )
        return SurveyStatus(False, None, now, (reason,), today)
    due = valid_until(last_completed_at, interval, program.tz)
    last_day = last_valid_day(last_completed_at, interval, program.tz)
    age = days_between(last_completed_at, now, program.tz)
    if age > interval:
        reason = Reason(
            Code.PATIENT_SURVEY_OVERDUE,
            Rule.R_SURV_1,
            f"The last patient survey is {age} days old; one is required every {interval} days.",
            f"{_RECORD_SURVEY}; the last survey counted through {last_day.isoformat()}.",
        )
        return SurveyStatus(False, last_completed_at, due, (reason,), today)
    return SurveyStatus(True, last_completed_at, due, (), last_day)


def prescriber_survey_reasons(category: RiskCategory, survey: Mapping[str, Any]) -> list[Reason]:
    """R-PRES-2, R-CONTRA-1, R-CONTRA-2: what the prescriber survey must confirm."""
    reasons = []
    if survey.get("counseled_on_risks") is not True:
        reasons.append(
            Reason(
                Code.PRESCRIBER_SURVEY_INCOMPLETE,
                Rule.R_PRES_2,
                "The prescriber must confirm the patient was counseled on the risks.",
                "Counsel the patient on the risks of lenalidomide, then send "
                "`prescriber_survey.counseled_on_risks: true`.",
            )
        )
    if category.is_frp and survey.get("contraception_confirmed") is not True:
        reasons.append(
            Reason(
                Code.PRESCRIBER_SURVEY_INCOMPLETE,
                Rule.R_CONTRA_1,
                "The prescriber must confirm two reliable methods of contraception (or abstinence).",
                "Confirm with the patient that she uses two reliable methods of contraception at once (or "
                "abstains), then send `prescriber_survey.contraception_confirmed: true`.",
            )
        )
    if category.is_male and survey.get("contraception_confirmed") is not True:
        reasons.append(
            Reason(
                Code.PRESCRIBER_SURVEY_INCOMPLETE,
                Rule.R_CONTRA_2,
                "The prescriber must confirm condom use with any female who can get pregnant.",
                "Confirm with the patient that he uses a condom with any female who can get pregnant (even after "
                "a vasectomy), then send `prescriber_survey.contraception_confirmed: true`.",
            )
        )
    return reasons
