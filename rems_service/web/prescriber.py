"""The prescriber's pages (UI.md, "Prescriber"): patients, enrollment, tests, surveys, authorizations."""

from __future__ import annotations

from typing import Any

from flask import render_template

from workflows.actors import UserRole

from . import page_blueprint

bp = page_blueprint("prescriber", __name__, url_prefix="/prescriber", roles=[UserRole.PRESCRIBER])


@bp.route("", methods=["GET"])
def home() -> Any:
    return render_template("prescriber/home.html")
