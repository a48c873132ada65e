"""Program staff's pages (UI.md, "Program staff (admin)"): prescribers, pharmacies and
users with search; a participant's status, history and the buttons its state allows;
the patients who need an administrator; creating and disabling users.

Each change calls the service function the API's view calls (``prescribers.suspend``,
``pharmacies.certify``, ``patients.reinstate``, ``users.create_user`` ...), with the
form's values validated by the API's own request schema, so a change made here is
the same change, audit entry and event as one made through the API. Which buttons a
participant shows comes from its life-cycle machine (the commands whose moves start
in its status), never from a table of this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, DateField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from rems_service.context import ctx
from rems_service.schemas.common import OptionalReasonSchema, ReasonSchema
from rems_service.schemas.users import UserCreateSchema
from rems_service.services import audit_log, directory, patients, pharmacies, prescribers, users
from rems_service.services.errors import Invalid
from workflows.actors import UserRole
from workflows.lifecycle import Lifecycle
from workflows.participants import (
    PHARMACY_ATTESTATIONS,
    PRESCRIBER_ATTESTATIONS,
    PharmacyCertification,
    PrescriberCertification,
)
from workflows.patients import PatientStatus

from . import page_blueprint
from .forms import load, show_errors

bp = page_blueprint("portal_admin", __name__, url_prefix="/admin", roles=[UserRole.ADMIN])

#: The commands program staff run on a participant, in the order their buttons show, with
#: the button's name (UI.md). ``expire`` is the sweep's, never a person's.
BUTTONS = {"certify": "Certify", "suspend": "Suspend", "reinstate": "Reinstate", "decertify": "Decertify"}
PAST = {"certify": "certified", "suspend": "suspended", "reinstate": "reinstated", "decertify": "decertified"}
#: Patients needing an administrator: status, section heading, the button and the service call.
REVIEW: tuple[tuple[PatientStatus, str, str, str], ...] = (
    (PatientStatus.HALTED, "Halted", "Reinstate", "reinstate"),
    (PatientStatus.NEEDS_INTERVENTION, "Needs intervention", "Resolve intervention", "resolve_intervention"),
)
ROLE_CHOICES = [SelectChoice(r.value, r.value.capitalize()) for r in UserRole]


def allowed_buttons(machine: type[Lifecycle], status: str) -> list[tuple[str, str]]:
    """``(command, button name)`` of every staff command whose machine moves start in ``status``."""
    found = []
    for trigger, label in BUTTONS.items():
        spec = machine.COMMANDS.get(trigger)
        if spec is not None and any(status in {s.value for s in move.sources} for move in spec.moves):
            found.append((trigger, label))
    return found


def _attestation_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


# -- forms ------------------------------------------------------------------------------------


class SearchForm(FlaskForm):
    """A list's search (GET; no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=200)])


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[Optional(), Length(max=500)])


class PrescriberCertifyForm(FlaskForm):
    pass


class PharmacyCertifyForm(FlaskForm):
    pass


for _name in PRESCRIBER_ATTESTATIONS:
    setattr(PrescriberCertifyForm, _name, BooleanField(_attestation_label(_name)))
for _name in PHARMACY_ATTESTATIONS:
    setattr(PharmacyCertifyForm, _name, BooleanField(_attestation_label(_name)))


class UserCreateForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter the person's name."), Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    prescriber_id = SelectField("Prescriber", choices=[SelectChoice("", "None")], default="")
    pharmacy_id = SelectField("Pharmacy", choices=[SelectChoice("", "None")], default="")
    training_completed_at = DateField("Training completed", validators=[Optional()])
    email = EmailField("Email", validators=[Optional(), Length(max=254)])
    password = PasswordField("Password", validators=[Optional(), Length(max=users.MAX_PASSWORD_LENGTH)])

    def api_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": (self.name.data or "").strip(), "role": self.role.data}
        for key in ("prescriber_id", "pharmacy_id"):
            if getattr(self, key).data:
                body[key] = getattr(self, key).data
        if self.training_completed_at.data:
            # A date: the day's start in UTC (the training record needs an instant).
            body["training_completed_at"] = datetime.combine(
                self.training_completed_at.data, time.min, tzinfo=UTC
            ).isoformat()
        if (self.email.data or "").strip():
            body["email"] = self.email.data.strip()
        if self.password.data:
            body["password"] = self.password.data
        return body


def _binding_choices(form: UserCreateForm) -> None:
    c = ctx()
    choices = directory.filter_choices(c.uow(), c.actor)
    form.prescriber_id.choices = [
        SelectChoice("", "None"),
        *(SelectChoice(str(p.id), f"{p.last_name}, {p.first_name} · NPI {p.npi}") for p in choices.prescribers),
    ]
    form.pharmacy_id.choices = [
        SelectChoice("", "None"),
        *(SelectChoice(str(p.id), f"{p.name} · NCPDP {p.ncpdp_id}") for p in choices.pharmacies),
    ]


# -- home: patients awaiting review -------------------------------------------------------------


@bp.route("", methods=["GET"])
def home() -> str:
    """Program staff's home: the patients who need an administrator, and the lists."""
    c = ctx()
    sections = []
    for status, heading, button, action in REVIEW:
        page = patients.listing(c.uow(), c.actor, c.now, c.program, status=status.value, limit=100)
        sections.append({"heading": heading, "button": button, "action": action, "rows": page.items})
    return render_template("admin/home.html", page_title="Program staff", sections=sections, form=ReasonForm())


@bp.route("/patients/<uuid:patient_id>/<any(reinstate, resolve_intervention):action>", methods=["POST"])
def review_patient(patient_id: uuid.UUID, action: str) -> Response | tuple[str, int]:
    """Reinstate a halted patient, or resolve a needs-intervention one (R-PAT-2)."""
    c = ctx()
    form = ReasonForm()
    args = load(OptionalReasonSchema(), {"reason": form.reason.data} if form.reason.data else {}, form)
    if args is None:
        flash(" ".join(form.reason.errors), "danger")
        return redirect(url_for("portal_admin.home"))
    run = patients.reinstate if action == "reinstate" else patients.resolve_intervention
    row = run(c.uow(), c.actor, c.now, c.program, patient_id, args.get("reason"))
    done = "reinstated" if action == "reinstate" else "resolved"
    flash(f"Patient {row.rems_patient_id} {done}: now {row.status.value.replace('_', ' ')}.", "success")
    return redirect(url_for("portal_admin.home"))


# -- prescribers and pharmacies -------------------------------------------------------------------


def _list_page(lister: Callable[..., Any], template: str, title: str) -> tuple[str, int]:
    c = ctx()
    form = SearchForm(formdata=request.args)
    cursor = request.args.get("cursor") or None
    if not form.validate():
        return render_template(template, page_title=title, form=form, rows=[], next_cursor=None), 422
    try:
        page = lister(c.uow(), c.actor, q=form.q.data, cursor=cursor)
    except Invalid as exc:
        show_errors(form, exc.field_errors)
        return render_template(template, page_title=title, form=form, rows=[], next_cursor=None), 422
    return render_template(
        template, page_title=title, form=form, rows=page.items, next_cursor=page.next_cursor, now=c.now
    ), 200


@bp.route("/prescribers", methods=["GET"])
def prescriber_list() -> tuple[str, int]:
    return _list_page(directory.prescribers, "admin/prescribers.html", "Prescribers")


@bp.route("/pharmacies", methods=["GET"])
def pharmacy_list() -> tuple[str, int]:
    return _list_page(directory.pharmacies, "admin/pharmacies.html", "Pharmacies")


def _participant_page(kind: str, participant_id: uuid.UUID, status: int = 200, **forms: Any) -> tuple[str, int]:
    c = ctx()
    if kind == "prescriber":
        row: Any = prescribers.get(c.uow(), c.actor, participant_id)
        current = row.status.value
        buttons = allowed_buttons(PrescriberCertification, current)
        title = f"Dr. {row.first_name} {row.last_name}"
        certify_form = forms.get("certify_form") or PrescriberCertifyForm()
        attestations: tuple[str, ...] = PRESCRIBER_ATTESTATIONS
    else:
        row = pharmacies.get(c.uow(), c.actor, participant_id)
        current = pharmacies.effective_status(row, c.now)
        buttons = allowed_buttons(PharmacyCertification, current)
        title = row.name
        certify_form = forms.get("certify_form") or PharmacyCertifyForm()
        attestations = PHARMACY_ATTESTATIONS
    history = audit_log.participant_history(c.uow(), c.actor, c.now, kind, participant_id)
    return render_template(
        "admin/participant.html",
        page_title=title,
        kind=kind,
        row=row,
        status=current,
        buttons=buttons,
        history=history,
        certify_form=certify_form,
        attestations=attestations,
        reason_form=forms.get("reason_form") or ReasonForm(),
        failed=forms.get("failed"),
    ), status


@bp.route("/prescribers/<uuid:prescriber_id>", methods=["GET"])
def prescriber_page(prescriber_id: uuid.UUID) -> tuple[str, int]:
    """A prescriber: status, history and the buttons its state allows."""
    return _participant_page("prescriber", prescriber_id)


@bp.route("/pharmacies/<uuid:pharmacy_id>", methods=["GET"])
def pharmacy_page(pharmacy_id: uuid.UUID) -> tuple[str, int]:
    """A pharmacy: status (as it stands now), history and the buttons its state allows."""
    return _participant_page("pharmacy", pharmacy_id)


def _change(kind: str, participant_id: uuid.UUID, command: str) -> Response | tuple[str, int]:
    """Run ``command`` on the participant through the service the API calls, then back to its page."""
    c = ctx()
    page = f"/admin/{'prescribers' if kind == 'prescriber' else 'pharmacies'}/{participant_id}"
    if command == "certify":
        form: Any = PrescriberCertifyForm() if kind == "prescriber" else PharmacyCertifyForm()
        names = PRESCRIBER_ATTESTATIONS if kind == "prescriber" else PHARMACY_ATTESTATIONS
        attestations = {name: bool(getattr(form, name).data) for name in names}
        try:
            if kind == "prescriber":
                prescribers.certify(c.uow(), c.actor, c.now, participant_id, attestations)
            else:
                pharmacies.certify(c.uow(), c.actor, c.now, c.program, participant_id, attestations)
        except Invalid as exc:
            show_errors(form, exc.field_errors)
            form.form_errors.append(exc.message)
            return _participant_page(kind, participant_id, 422, certify_form=form, failed="certify")
    elif command == "reinstate":
        service: Any = prescribers if kind == "prescriber" else pharmacies
        service.reinstate(c.uow(), c.actor, c.now, participant_id)
    else:
        reason_form = ReasonForm()
        schema = ReasonSchema() if kind == "prescriber" else OptionalReasonSchema()
        body = {"reason": reason_form.reason.data} if reason_form.reason.data else {}
        args = load(schema, body, reason_form)
        if args is None:
            return _participant_page(kind, participant_id, 422, reason_form=reason_form, failed=command)
        service = prescribers if kind == "prescriber" else pharmacies
        getattr(service, command)(c.uow(), c.actor, c.now, participant_id, args.get("reason"))
    noun = "Prescriber" if kind == "prescriber" else "Pharmacy"
    flash(f"{noun} {PAST[command]}.", "success")
    return redirect(page)


@bp.route("/prescribers/<uuid:prescriber_id>/<any(certify, suspend, reinstate, decertify):command>", methods=["POST"])
def prescriber_change(prescriber_id: uuid.UUID, command: str) -> Response | tuple[str, int]:
    return _change("prescriber", prescriber_id, command)


@bp.route("/pharmacies/<uuid:pharmacy_id>/<any(certify, suspend, reinstate, decertify):command>", methods=["POST"])
def pharmacy_change(pharmacy_id: uuid.UUID, command: str) -> Response | tuple[str, int]:
    return _change("pharmacy", pharmacy_id, command)


# -- users ------------------------------------------------------------------------------------------


def _users_page(create: UserCreateForm | None = None, status: int = 200) -> tuple[str, int]:
    c = ctx()
    form = SearchForm(formdata=request.args)
    create = create or UserCreateForm(formdata=None)
    _binding_choices(create)
    rows: list[Any] = []
    next_cursor = None
    if form.validate():
        try:
            page = directory.users(c.uow(), c.actor, q=form.q.data, cursor=request.args.get("cursor") or None)
            rows, next_cursor = page.items, page.next_cursor
        except Invalid as exc:
            show_errors(form, exc.field_errors)
            status = 422
    return render_template(
        "admin/users.html",
        page_title="Users",
        form=form,
        create=create,
        rows=rows,
        next_cursor=next_cursor,
        is_disabled=users.is_disabled,
        prescriber_names={str(p.id): f"{p.last_name}, {p.first_name}" for p in _choices().prescribers},
        pharmacy_names={str(p.id): p.name for p in _choices().pharmacies},
        me=c.actor.user_id,
    ), status


def _choices() -> directory.FilterChoices:
    c = ctx()
    return directory.filter_choices(c.uow(), c.actor)


@bp.route("/users", methods=["GET"])
def user_list() -> tuple[str, int]:
    return _users_page()


@bp.route("/users", methods=["POST"])
def create_user() -> Response | tuple[str, int]:
    """Create a user (role, binding, email, password) with ``users.create_user``, as the API does."""
    c = ctx()
    form = UserCreateForm()
    _binding_choices(form)
    if not form.validate():
        return _users_page(form, 422)
    args = load(UserCreateSchema(), form.api_body(), form)
    if args is None:
        return _users_page(form, 422)
    try:
        user, _token = users.create_user(c.uow(), c.actor, c.now, **args)
    except Invalid as exc:
        show_errors(form, exc.field_errors)
        if not exc.field_errors:
            form.form_errors.append(exc.message)
        return _users_page(form, 422)
    flash(f"User {user.name} created ({user.role.value}).", "success")
    return redirect(url_for("portal_admin.user_list", q=user.name))


@bp.route("/users/<uuid:user_id>/disable", methods=["POST"])
def disable_user(user_id: uuid.UUID) -> Response:
    """Disable a user: its token and sessions stop working at once."""
    c = ctx()
    user = users.disable_user(c.uow(), c.actor, c.now, user_id)
    flash(f"User {user.name} disabled: its token and sessions no longer work.", "success")
    return redirect(url_for("portal_admin.user_list", q=user.name))
