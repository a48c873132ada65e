"""The HTTP API: flask-smorest blueprints, one module per resource."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint

from rems_service.auth import SECURITY_SCHEME

from . import (
    audit,
    authorizations,
    dispenses,
    errors,
    health,
    openapi,
    patients,
    pharmacies,
    prescribers,
    users,
    webhooks,
)
from .errors import RemsApi, load_json_body

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


# Every ``@blp.arguments(...)`` body (webargs' "json" location) is read by
# ``load_json_body``: a body that is not JSON is a 415 or a 400, never "every field
# missing". Registered through webargs' documented ``location_loader`` hook on the
# parser flask-smorest's blueprints share; it runs after authentication and the role
# check, like the rest of the body validation.
Blueprint.ARGUMENTS_PARSER.location_loader("json")(load_json_body)


def init_app(app: Flask) -> RemsApi:
    api = RemsApi(
        app,
        spec_kwargs={
            "info": {
                "description": "Lenalidomide REMS workflow service. Every operation except "
                "/healthz, /readyz and this document needs `Authorization: Bearer <token>`."
            },
            # Declares on every operation the error statuses it can answer and the
            # sandbox clock header, as the operations are registered (``openapi``).
            "extra_plugins": [openapi.ConventionsPlugin()],
        },
    )
    openapi.register_components(api)
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
    app.register_blueprint(openapi.docs_blp)  # /api/v1/docs, Swagger UI from local assets
    errors.init_app(app)
    return api
