"""The portal's forms (Flask-WTF, CSRF on) with the exact labels of UI.md.

A form checks what a browser sends (types, required fields); the values then go
through the same marshmallow request schema the API validates with
(``load(schema, data, form)``), so a value the API refuses is refused here too,
with the message shown next to the field it belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_wtf import FlaskForm
from marshmallow import Schema, ValidationError
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from rems_service.api.errors import flatten_errors
from rems_service.schemas.decisions import STRENGTHS_MG
from workflows.patients import FnrpReason, MenstrualCycle, RiskCategory
from workflows.testing import PregnancyResult


def _choices(enum: Any, labels: Mapping[str, str] | None = None, blank: str = "Choose…") -> list[SelectChoice]:
    """A select's options: a blank first one, then the enum's values with readable labels."""
    labels = labels or {}
    return [
        SelectChoice("", blank),
        *(SelectChoice(e.value, labels.get(e.value, e.value.replace("_", " ").capitalize())) for e in enum),
    ]


def load(schema: Schema, data: dict[str, Any], form: FlaskForm, fields: Mapping[str, str] | None = None) -> Any:
    """``schema.load(data)``; on errors, put each message on the form field it names
    (``fields`` maps schema names onto form names) and return None."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        fields = fields or {}
        for name, messages in flatten_errors(exc.messages).items():
            target = getattr(form, fields.get(name, name.rsplit(".", 1)[-1]), None)
            if target is None:
                form.form_errors.extend(f"{name}: {m}" for m in messages)
            else:
                target.errors = [*list(target.errors), *messages]
        return None


def show_errors(
    form: FlaskForm, field_errors: Mapping[str, list[str]], fields: Mapping[str, str] | None = None
) -> None:
    """Put a service's field errors (``Invalid``) next to the form fields they name."""
    fields = fields or {}
    for name, messages in field_errors.items():
        target = getattr(form, fields.get(name, name.rsplit(".", 1)[-1]), None)
        if target is None:
            form.form_errors.extend(messages)
        else:
            target.errors = [*list(target.errors), *messages]


def _whole(message: str) -> list[Any]:
    return [InputRequired(message=message), NumberRange(min=1, message="Enter a whole number of at least 1.")]


class DispenseCheckForm(FlaskForm):
    authorization_number = StringField(
        "Authorization number", validators=[DataRequired("Enter the authorization number."), Length(max=40)]
    )
    rems_patient_id = StringField(
        "REMS patient ID", validators=[DataRequired("Enter the REMS patient ID."), Length(max=20)]
    )
    days_supply = IntegerField("Days' supply", validators=_whole("Enter the days' supply."))
    quantity = IntegerField("Quantity", validators=_whole("Enter the quantity (capsules)."))
    medication_guide_provided = BooleanField("Medication Guide provided")
    checklist_completed = BooleanField("Counseling checklist completed")
    #: The idempotency key of this rendering of the form (``web.decisions``).
    request_key = HiddenField()

    def api_body(self) -> dict[str, Any]:
        return {
            "authorization_number": self.authorization_number.data,
            "rems_patient_id": self.rems_patient_id.data,
            "days_supply": self.days_supply.data,
            "quantity": self.quantity.data,
            "counseling": {
                "medication_guide_provided": bool(self.medication_guide_provided.data),
                "checklist_completed": bool(self.checklist_completed.data),
            },
        }


class ActionForm(FlaskForm):
    """A button's form: only the CSRF token (Complete hand-over, Reverse, Void, Sign out)."""


RISK_LABELS = {
    "FRP_ADULT": "Female of reproductive potential, adult",
    "FRP_CHILD": "Female of reproductive potential, child",
    "FNRP_ADULT": "Female not of reproductive potential, adult",
    "FNRP_CHILD": "Female not of reproductive potential, child",
    "MALE_ADULT": "Male, adult",
    "MALE_CHILD": "Male, child",
}


class EnrollForm(FlaskForm):
    first_name = StringField("First name", validators=[DataRequired("Enter the first name."), Length(max=100)])
    last_name = StringField("Last name", validators=[DataRequired("Enter the last name."), Length(max=100)])
    date_of_birth = DateField("Date of birth", validators=[InputRequired("Enter the date of birth.")])
    risk_category = SelectField(
        "Risk category",
        choices=_choices(RiskCategory, RISK_LABELS),
        validators=[DataRequired("Choose the risk category.")],
    )
    menstrual_cycle = SelectField(
        "Menstrual cycle", choices=_choices(MenstrualCycle, blank="Not applicable"), validators=[Optional()]
    )
    fnrp_reason = SelectField(
        "Reason not of reproductive potential",
        choices=_choices(FnrpReason, blank="Not applicable"),
        validators=[Optional()],
    )
    guardian_name = StringField("Guardian name", validators=[Optional(), Length(max=200)])
    ppaf_signed = BooleanField("PPAF signed")
    counseling_completed = BooleanField("Counseling completed")

    def api_body(self) -> dict[str, Any]:
        dob = self.date_of_birth.data
        return {
            "first_name": self.first_name.data,
            "last_name": self.last_name.data,
            "date_of_birth": dob.isoformat() if dob else None,
            "risk_category": self.risk_category.data,
            "menstrual_cycle": self.menstrual_cycle.data or None,
            "fnrp_reason": self.fnrp_reason.data or None,
            "guardian_name": (self.guardian_name.data or "").strip() or None,
            "ppaf_signed": bool(self.ppaf_signed.data),
            "counseling_completed": bool(self.counseling_completed.data),
        }


class PregnancyTestForm(FlaskForm):
    collected_at = DateTimeLocalField(
        "Collected at", format="%Y-%m-%dT%H:%M", validators=[InputRequired("Enter when the sample was collected.")]
    )
    result = SelectField("Result", choices=_choices(PregnancyResult), validators=[DataRequired("Choose the result.")])
    sensitivity_miu_ml = IntegerField("Sensitivity (mIU/mL)", validators=_whole("Enter the test's sensitivity."))


class AuthorizationRequestForm(FlaskForm):
    days_supply = IntegerField("Days' supply", validators=_whole("Enter the days' supply."))
    quantity = IntegerField("Quantity", validators=_whole("Enter the quantity (capsules)."))
    strength_mg = SelectField(
        "Strength (mg)",
        choices=[SelectChoice("", "Choose…"), *(SelectChoice(f"{s:g}", f"{s:g} mg") for s in STRENGTHS_MG)],
        validators=[DataRequired("Choose the capsule strength.")],
    )
    counseled_on_risks = BooleanField("Counseled on risks")
    contraception_confirmed = BooleanField("Contraception confirmed")
    #: The idempotency key of this rendering of the form (``web.decisions``).
    request_key = HiddenField()


#: The survey questions as a person reads them (workflows.surveys names them).
SURVEY_QUESTIONS = {
    "missed_period": "Missed a period or had unusual bleeding",
    "unprotected_intercourse": "Had unprotected sexual intercourse",
    "missed_contraception": "Missed a contraceptive method",
    "shared_capsules": "Shared capsules with anyone",
    "donated_blood": "Donated blood",
}


def survey_form(questions: tuple[str, ...], **kwargs: Any) -> FlaskForm:
    """The **Record survey** form: one checkbox per question of the patient's category
    (checked: the patient answered yes), and **Completed at**."""

    class SurveyForm(FlaskForm):
        completed_at = DateTimeLocalField(
            "Completed at", format="%Y-%m-%dT%H:%M", validators=[InputRequired("Enter when the survey was completed.")]
        )

    for name in questions:
        setattr(SurveyForm, name, BooleanField(SURVEY_QUESTIONS.get(name, name.replace("_", " ").capitalize())))
    form = SurveyForm(**kwargs)
    form.question_names = questions
    return form
