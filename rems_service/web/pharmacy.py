"""The pharmacist's pages (UI.md, "Pharmacist"): dispense check, hand-over queue, recent dispenses.

Each view calls the service function the API's dispense views call
(``dispenses.request``, ``complete``, ``reverse``, ``listing``, ``get``), so a
decision made here is the same recorded Decision, audit entry and replay.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from rems_service.context import ctx
from rems_service.schemas.decisions import DispenseCreateSchema
from rems_service.services import dispenses
from rems_service.services.errors import Conflict
from workflows.actors import UserRole
from workflows.dispenses import DispenseStatus

from . import page_blueprint
from .decisions import new_request_key, request_key, shown
from .forms import ActionForm, DispenseCheckForm, load

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


def _home(form: DispenseCheckForm, result: Any = None, status: int = 200) -> tuple[str, int]:
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
    if not form.validate():
        return _home(form, status=422)
    args = load(
        DispenseCreateSchema(), form.api_body(), form, {"counseling.checklist_completed": "checklist_completed"}
    )
    if args is None:
        return _home(form, status=422)
    c = ctx()
    answer = dispenses.request(
        c.uow,
        c.actor,
        c.now,
        c.program,
        dispenses.command(**args),
        idempotency_key=request_key(form.request_key.data),
        request_body=args,
    )
    return _home(form, shown(answer))


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
            view = dispenses.complete(c.uow(), c.actor, c.now, c.program, number)
            flash(f"Hand-over of {view.dispense.confirmation_number} recorded.", "success")
        else:
            view = dispenses.reverse(c.uow(), c.actor, c.now, c.program, number, "reversed at the counter")
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
