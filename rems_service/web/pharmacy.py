"""The pharmacist's pages (UI.md, "Pharmacist"): dispense check, hand-over queue, recent dispenses.

Each view calls the service function the API's dispense views call
(``dispenses.request``, ``complete``, ``reverse``, ``listing``, ``get``), so a
decision made here is the same recorded Decision, audit entry and replay.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from rems_service.api.decisions import guarded_body
from rems_service.context import ctx
from rems_service.schemas.decisions import DispenseCreateSchema
from rems_service.services import dispenses
from rems_service.services.errors import Conflict, Invalid
from workflows.actors import UserRole
from workflows.audit import PORTAL_ORIGIN
from workflows.dispenses import DispenseStatus

from . import page_blueprint
from .decisions import new_request_key, request_key, rules_to_acknowledge, shown
from .forms import (
    ACK_RULES,
    AcknowledgementForm,
    ActionForm,
    DispenseCheckForm,
    acknowledgement_forms,
    acknowledgements_sent,
    load,
    show_errors,
)

bp = page_blueprint("pharmacy", __name__, url_prefix="/pharmacy", roles=[UserRole.PHARMACIST])

#: How many of the pharmacy's newest dispenses the home page lists.
RECENT = 15
QUEUE = 50


def time_left(until: datetime, now: datetime) -> str:
    """``until - now`` for a person at the counter: "5 h 12 min left", "ended"."""
    left = until - now
    if left <= timedelta(0):
        return "ended"
    minutes = int(left.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min left"
    return f"{minutes} min left" if minutes else "less than a minute left"


def _home(
    form: DispenseCheckForm,
    result: Any = None,
    status: int = 200,
    acks: list[AcknowledgementForm] | None = None,
) -> tuple[str, int]:
    c = ctx()
    form.request_key.data = new_request_key()  # each rendering of the form decides at most once
    queue = dispenses.listing(c.uow(), c.actor, c.now, status=DispenseStatus.CONFIRMED.value, limit=QUEUE)
    recent = dispenses.listing(c.uow(), c.actor, c.now, limit=RECENT)
    checks = dispenses.recent_decisions(c.uow(), c.actor, limit=RECENT)
    return (
        render_template(
            "pharmacy/home.html",
            page_title="Dispense check",
            form=form,
            result=result,
            acks=acks or [],
            ack_rules_field=ACK_RULES,
            queue=queue.items,
            recent=recent.items,
            checks=checks,
            now=c.now,
            time_left=time_left,
        ),
        status,
    )


@bp.route("", methods=["GET"])
def home() -> Any:
    """Dispense check, the hand-over queue and the recent dispenses."""
    form = DispenseCheckForm(formdata=None, days_supply=None, quantity=None)
    return _home(form)


@bp.route("/check", methods=["POST"])
def check() -> Any:
    """**Check and authorize**: the dispense decision (R-DISP-1), every reason shown."""
    form = DispenseCheckForm()
    # R-ACK-1: the acknowledgements this form offered (after a denial citing critical warnings).
    acks = acknowledgement_forms(request.form.getlist(ACK_RULES), contact=True, formdata=request.form)
    valid = all([form.validate(), *(a.validate() for a in acks)])
    if not valid:
        return _home(form, status=422, acks=acks)
    body = {**form.api_body(), "acknowledgements": acknowledgements_sent(acks)}
    args = load(DispenseCreateSchema(), body, form, {"counseling.checklist_completed": "checklist_completed"})
    if args is None:
        return _home(form, status=422, acks=acks)
    c = ctx()
    fields = {k: v for k, v in args.items() if k != "acknowledgements"}
    try:
        answer = dispenses.request(
            c.uow,
            c.actor,
            c.now,
            c.program,
            dispenses.command(**fields),
            idempotency_key=request_key(form.request_key.data),
            request_body=guarded_body(args),
            acknowledgements_sent=args["acknowledgements"],
            origin=PORTAL_ORIGIN,
        )
    except Invalid as exc:  # a prescriber contact in the future: next to its field, nothing decided
        _ack_errors(acks, args["acknowledgements"], exc.field_errors)
        form.form_errors.append(exc.message)
        return _home(form, status=422, acks=acks)
    result = shown(answer)
    return _home(
        form, result, acks=acknowledgement_forms(rules_to_acknowledge(result), contact=True, formdata=request.form)
    )


def _ack_errors(acks: list[AcknowledgementForm], sent: list[dict[str, Any]], errors: dict[str, list[str]]) -> None:
    """Put ``acknowledgements.<i>.<field>`` errors on the entry of the rule sent at ``i``."""
    by_rule = {a.rule: a for a in acks}
    for name, messages in errors.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "acknowledgements" and parts[1].isdigit() and int(parts[1]) < len(sent):
            entry = by_rule.get(sent[int(parts[1])]["rule"])
            if entry is not None and parts[2] in entry:
                show_errors(entry, {parts[2]: messages})


@bp.route("/dispenses/<string:number>", methods=["GET"])
def confirmation(number: str) -> Any:
    """One confirmation of this pharmacy (another pharmacy's is 404, as in the API)."""
    c = ctx()
    view = dispenses.get(c.uow(), c.actor, c.now, number)
    return render_template(
        "pharmacy/confirmation.html",
        page_title=f"Confirmation {view.dispense.confirmation_number}",
        view=view,
        now=c.now,
        time_left=time_left,
        action=ActionForm(),
    )


def _act(number: str, verb: str) -> Response:
    ActionForm()  # the CSRF token was checked by the blueprint's guard
    c = ctx()
    try:
        if verb == "complete":
            view = dispenses.complete(c.uow(), c.actor, c.now, c.program, number, origin=PORTAL_ORIGIN)
            flash(f"Hand-over of {view.dispense.confirmation_number} recorded.", "success")
        else:
            view = dispenses.reverse(
                c.uow(), c.actor, c.now, c.program, number, "reversed at the counter", origin=PORTAL_ORIGIN
            )
            flash(
                f"Confirmation {view.dispense.confirmation_number} reversed; authorization "
                f"{view.authorization_number} can be used again while it is valid.",
                "success",
            )
    except Conflict as exc:
        flash(f"{number}: {exc.message}", "danger")
    return redirect(url_for("pharmacy.home") + "#awaiting-hand-over")


@bp.route("/dispenses/<string:number>/complete", methods=["POST"])
def complete(number: str) -> Response:
    """**Complete hand-over** (R-DISP-2)."""
    return _act(number, "complete")


@bp.route("/dispenses/<string:number>/reverse", methods=["POST"])
def reverse(number: str) -> Response:
    """**Reverse** a confirmation not yet handed over."""
    return _act(number, "reverse")
