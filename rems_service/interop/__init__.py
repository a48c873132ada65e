"""The standard fronts (INTEROP.md): NCPDP SCRIPT REMS transactions, HL7 FHIR R4
``$rems-etasu`` and CDS Hooks 2.0. Each adapter parses and validates its own format,
calls the same service as the JSON API and renders its own format; no rule lives here."""

from __future__ import annotations

from flask import Flask

from . import cds_hooks, fhir, ncpdp


def init_app(app: Flask) -> None:
    for blp in (ncpdp.blp, fhir.blp, cds_hooks.blp):
        app.register_blueprint(blp)
