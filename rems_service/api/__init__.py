"""The HTTP API: flask-smorest blueprints, one module per resource."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint

from rems_service.auth import SECURITY_SCHEME
from rems_service.ratelimit import limit_decisions

from . import (
    audit,
    authorizations,
    clinical,
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
from .errors import RemsApi, load_json_body, load_query, refuse_unsafe_path

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
    clinical.blp,
)


# Every ``@blp.arguments(...)`` body (webargs' "json" location) is read by
# ``load_json_body``: a body that is not JSON is a 415 or a 400, never "every field
# missing". Registered through webargs' documented ``location_loader`` hook on the
# parser flask-smorest's blueprints share; it runs after authentication and the role
# check, like the rest of the body validation.
Blueprint.ARGUMENTS_PARSER.location_loader("json")(load_json_body)
# Query strings and path segments: a control character (NUL included) or an unpaired
# surrogate is a 422 naming the parameter, before any view or database sees it. The
# path check is registered after ``auth.protect``'s, so a caller is authenticated first.
Blueprint.ARGUMENTS_PARSER.location_loader("query")(load_query)
for _blp in BLUEPRINTS:
    _blp.before_request(refuse_unsafe_path)
# POST /authorizations and POST /dispenses: requests per token (issue 18).
limit_decisions(authorizations.blp)
limit_decisions(dispenses.blp)


def init_app(app: Flask) -> RemsApi:
    api = RemsApi(
        app,
        spec_kwargs={
            "info": {
                "description": "Lenalidomide REMS workflow service. Every operation except "
                "/healthz, /readyz and this document needs `Authorization: Bearer <token>`. The standard "
                "fronts (NCPDP SCRIPT `POST /ncpdp/script`, FHIR `/fhir/metadata` and `$rems-etasu`, CDS "
                "Hooks `/cds-services`) are described in the project's `docs/interop.md`."
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
