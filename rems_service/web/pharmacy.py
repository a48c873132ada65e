"""The pharmacist's pages (UI.md, "Pharmacist"): dispense check, hand-over queue, recent dispenses."""

from __future__ import annotations

from typing import Any

from flask import render_template

from workflows.actors import UserRole

from . import page_blueprint

bp = page_blueprint("pharmacy", __name__, url_prefix="/pharmacy", roles=[UserRole.PHARMACIST])


@bp.route("", methods=["GET"])
def home() -> Any:
    return render_template("pharmacy/home.html")
