"""The HTTP API: flask-smorest blueprints, one module per resource."""

from __future__ import annotations

from flask import Flask

from . import audit, authorizations, dispenses, errors, health, patients, pharmacies, prescribers, users, webhooks
from .errors import RemsApi

BLUEPRINTS = (
    health.blp,
    users.blp,
    prescribers.blp,
    pharmacies.blp,
    patients.blp,
    authorizations.blp,
    dispenses.blp,
    audit.blp,
    webhooks.blp,
)


def init_app(app: Flask) -> RemsApi:
    api = RemsApi(
        app,
        spec_kwargs={
            "info": {
                "description": "Lenalidomide REMS workflow service. Every operation except "
                "/healthz, /readyz and this document needs `Authorization: Bearer <token>`."
            }
        },
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
    errors.init_app(app)
    return api
