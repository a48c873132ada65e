"""The HTTP API: flask-smorest blueprints, one module per resource."""

from __future__ import annotations

from flask import Flask

from rems_service.auth import SECURITY_SCHEME

from . import audit, authorizations, dispenses, errors, health, patients, pharmacies, prescribers, users, webhooks
from .errors import RemsApi

BLUEPRINTS = (
    health.blp,
    users.blp,
    users.me_blp,
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
    # Declared through apispec's public components API; each protected operation
    # references it (``auth.roles`` documents it with ``Blueprint.doc``).
    api.spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A user's token (`POST /api/v1/users`, `rems users create`).",
        },
    )
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
    errors.init_app(app)
    return api
