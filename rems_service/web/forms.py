"""The portal's forms (Flask-WTF, CSRF on) with the exact labels of UI.md.

A form checks what a browser sends (types, required fields); the values then go
through the same marshmallow request schema the API validates with
(``load(schema, data, form)``), so a value the API refuses is refused here too,
with the message shown next to the field it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask_wtf import FlaskForm
from marshmallow import Schema, ValidationError
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    DecimalField,
    FloatField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.fields.core import Label
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from rems_service.api.errors import flatten_errors
from rems_service.schemas.decisions import STRENGTHS_MG
from workflows.clinical_params import Regimen
from workflows.courses import CourseReason
from workflows.labs import LOINC, LabKind
from workflows.patients import FnrpReason, MenstrualCycle, RiskCategory
from workflows.rules import Rule
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


def utc_text(value: datetime | None) -> str | None:
    """A ``datetime-local`` value (no offset) read as UTC, as ISO 8601 with the offset."""
    return None if value is None else value.replace(tzinfo=UTC).isoformat()


# R-ACK-1: acknowledging a critical warning in the decision request that goes ahead despite it

#: The hidden field listing the rules whose acknowledgement the form offers.
ACK_RULES = "ack_rules"


class AcknowledgementForm(FlaskForm):
    """One entry of the request's ``acknowledgements`` (AcknowledgementSchema): the rule, why the
    request goes ahead despite its warning, and (pharmacist) when the prescriber was reached.
    A blank reason sends no acknowledgement for that rule."""

    class Meta:
        csrf = False  # part of the decision form, whose token covers it

    reason = TextAreaField(
        "Reason", validators=[Optional(), Length(max=1000, message="At most 1000 characters.")], render_kw={"rows": 2}
    )
    prescriber_contacted_at = DateTimeLocalField(
        "Prescriber contacted at", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )

    rule: str = ""

    def entry(self) -> dict[str, Any] | None:
        reason = (self.reason.data or "").strip()
        if not reason:
            return None
        contacted = self.prescriber_contacted_at.data if "prescriber_contacted_at" in self else None
        return {"rule": self.rule, "reason": reason, "prescriber_contacted_at": utc_text(contacted)}


def acknowledgement_forms(rules: Iterable[str], *, contact: bool, formdata: Any = None) -> list[AcknowledgementForm]:
    """The acknowledgement entries of ``rules`` (unknown rule IDs dropped), each labelled with its rule;
    ``contact``: with the pharmacist's **Prescriber contacted at**. ``formdata`` keeps entered values."""
    known = {r.value for r in Rule}
    forms = []
    for rule in dict.fromkeys(r for r in rules if r in known):
        form = AcknowledgementForm(formdata=formdata, prefix=f"ack-{rule}")
        form.rule = rule
        form.reason.label = Label(form.reason.id, f"Reason for going ahead despite {rule}")
        if contact:
            field = form.prescriber_contacted_at
            field.label = Label(field.id, f"Prescriber contacted at ({rule})")
        else:
            del form["prescriber_contacted_at"]
        forms.append(form)
    return forms


def acknowledgements_sent(forms: Iterable[AcknowledgementForm]) -> list[dict[str, Any]]:
    """The request's ``acknowledgements``: one per entry with a reason."""
    return [e for e in (f.entry() for f in forms) if e is not None]


# Treatment courses and lab results (CLINICAL_RULES.md): the prescriber's forms

COURSE_REASON_LABELS = {
    "hematologic": "Hematologic (blood counts)",
    "renal": "Renal function",
    "other_toxicity": "Other toxicity",
    "patient_request": "Patient's request",
    "other": "Other",
}
REGIMEN_LABELS = {
    "combination": "Combination with dexamethasone (21 of 28 days)",
    "maintenance": "Maintenance after stem-cell transplant (continuous)",
}


def _dose(label: str, required: bool = True) -> DecimalField:
    checks: list[Any] = [NumberRange(min=0.5, max=100, message="Enter a dose between 0.5 and 100 mg.")]
    first = InputRequired("Enter the dose in mg.") if required else Optional()
    return DecimalField(label, places=None, validators=[first, *checks])


def _course_reason(label: str, required: bool = True) -> SelectField:
    return SelectField(
        label,
        choices=_choices(CourseReason, COURSE_REASON_LABELS),
        validators=[DataRequired("Choose the reason.")] if required else [Optional()],
    )


def _details(label: str) -> StringField:
    return StringField(label, validators=[Optional(), Length(max=500, message="At most 500 characters.")])


class CourseStartForm(FlaskForm):
    regimen = SelectField(
        "Regimen", choices=_choices(Regimen, REGIMEN_LABELS), validators=[DataRequired("Choose the regimen.")]
    )
    start_date = DateField("Start date", validators=[InputRequired("Enter the first day of the course.")])
    dose_mg = _dose("Dose (mg)")
    dose_every_days = IntegerField(
        "Dose every (days)",
        default=1,
        validators=[InputRequired("Enter 1 for daily."), NumberRange(min=1, max=7, message="Between 1 and 7.")],
    )
    thromboprophylaxis = StringField("Thromboprophylaxis", validators=[Optional(), Length(max=200)])
    weight_kg = FloatField(
        "Weight (kg)", validators=[Optional(), NumberRange(min=1, max=500, message="Between 1 and 500 kg.")]
    )
    on_dialysis = BooleanField("On dialysis")

    def api_body(self) -> dict[str, Any]:
        return {
            "regimen": self.regimen.data,
            "start_date": self.start_date.data.isoformat() if self.start_date.data else None,
            "dose_mg": float(self.dose_mg.data) if self.dose_mg.data is not None else None,
            "dose_every_days": self.dose_every_days.data,
            "thromboprophylaxis": (self.thromboprophylaxis.data or "").strip() or None,
            "weight_kg": self.weight_kg.data,
            "on_dialysis": bool(self.on_dialysis.data),
        }


def _labs() -> SelectMultipleField:
    """The patient's lab results behind a change (``lab_result_ids``): checkboxes, set per patient
    (``set_lab_choices``)."""
    return SelectMultipleField(
        "Labs behind it", choices=[], widget=ListWidget(prefix_label=False), option_widget=CheckboxInput()
    )


class CourseHoldForm(FlaskForm):
    reason_code = _course_reason("Hold reason")
    reason = _details("Hold details")
    lab_result_ids = _labs()


class CourseResumeForm(FlaskForm):
    dose_mg = _dose("Resume at dose (mg)", required=False)
    reason_code = _course_reason("Resume reason", required=False)
    reason = _details("Resume details")
    lab_result_ids = _labs()


class CourseDoseForm(FlaskForm):
    dose_mg = _dose("New dose (mg)")
    reason_code = _course_reason("Dose change reason")
    reason = _details("Dose change details")
    lab_result_ids = _labs()


def set_lab_choices(form: FlaskForm, choices: list[tuple[str, str]]) -> FlaskForm:
    if "lab_result_ids" in form:
        form.lab_result_ids.choices = choices
    return form


class CourseStopForm(FlaskForm):
    reason_code = _course_reason("Stop reason")
    reason = _details("Stop details")


def course_body(form: FlaskForm) -> dict[str, Any]:
    """A course action's request body (the API's schema checks it): only the fields filled in."""
    body: dict[str, Any] = {}
    if form.reason_code.data:
        body["reason_code"] = form.reason_code.data
    if (form.reason.data or "").strip():
        body["reason"] = form.reason.data.strip()
    if "dose_mg" in form and form.dose_mg.data is not None:
        body["dose_mg"] = float(form.dose_mg.data)
    if "lab_result_ids" in form and form.lab_result_ids.data:
        body["lab_result_ids"] = list(form.lab_result_ids.data)
    return body


class LabResultForm(FlaskForm):
    loinc = SelectField(
        "Lab test",
        choices=[
            SelectChoice("", "Choose…"),
            *(SelectChoice(c.code, f"{c.name} ({c.code})") for c in LOINC.values() if c.kind is not LabKind.PREGNANCY),
        ],
        validators=[DataRequired("Choose the lab test.")],
    )
    value = DecimalField("Lab value", places=None, validators=[InputRequired("Enter the value.")])
    unit = StringField(
        "Lab unit (UCUM)",
        validators=[Optional(), Length(max=40)],
        description="For example 10*3/uL, /uL, g/dL, g/L, mg/(24.h), mL/min; blank: the test's usual unit.",
    )
    collected_at = DateTimeLocalField(
        "Specimen collected", format="%Y-%m-%dT%H:%M", validators=[InputRequired("Enter when it was collected.")]
    )
    reference_low = FloatField("Reference low", validators=[Optional()])
    reference_high = FloatField("Reference high", validators=[Optional()])
    source = StringField("Reporting lab", validators=[Optional(), Length(max=200)])

    def api_body(self) -> dict[str, Any]:
        return {
            "loinc": self.loinc.data,
            "value": float(self.value.data) if self.value.data is not None else None,
            "unit": (self.unit.data or "").strip() or None,
            "collected_at": utc_text(self.collected_at.data),
            "reference_low": self.reference_low.data,
            "reference_high": self.reference_high.data,
            "source": (self.source.data or "").strip() or None,
        }
