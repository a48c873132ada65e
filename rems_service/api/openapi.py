"""What the OpenAPI document says about every operation, declared once for all of them.

The error statuses of API.md's conventions follow from an operation's shape, so
they are added here as each operation is registered, never by hand in the views
(an endpoint added later gets them too):

- every operation: 400 (a malformed or refused ``X-Rems-Now``) and the
  ``X-Rems-Now`` header itself (sandbox and test only);
- a protected operation (one that declares the bearer security requirement,
  ``auth.roles``): 401, 403, 429 (rate limits, with ``Retry-After``) and 503
  (authentication reads the database);
- a path naming an object (``/patients/{patient_id}``): 404, and 422 (a control
  character in the segment);
- POST, PUT and PATCH of a protected operation (state changes): 409;
- a JSON body: 400 (not valid JSON), 415 (not JSON) and 422;
- query parameters: 422;
- a decision (answers with a Decision): 503 worded for failing closed.

A status a view declares itself (``@blp.alt_response``) is kept; when it carries
no body schema, it gets the error body. The error body is one component
(``Error``), and so is each error response.
"""

from __future__ import annotations

import base64
import hashlib
from importlib.resources import files
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Blueprint, Response, render_template_string, send_from_directory, url_for
from flask_smorest import Api

from rems_service.clock import CLOCK_HEADER
from rems_service.schemas.decisions import DecisionSchema

from .errors import ErrorSchema

#: The component names of the error body and of the sandbox clock header.
ERROR_SCHEMA = "Error"
CLOCK_PARAMETER = "X-Rems-Now"
#: The Decision schema's component name (flask-smorest names a schema after its class, less "Schema").
DECISION_SCHEMA = DecisionSchema.__name__.removesuffix("Schema")

#: The error response components: name -> (status, description).
RESPONSES: dict[str, tuple[int, str]] = {
    "BadRequest": (
        400,
        f"Malformed request: the body is not valid JSON, or the `{CLOCK_HEADER}` header is malformed "
        "or sent outside the sandbox and test environments.",
    ),
    "Unauthorized": (
        401,
        "No bearer token, or one that is not valid (unknown, replaced, or its user disabled). "
        "Carries `WWW-Authenticate: Bearer`.",
    ),
    "Forbidden": (403, "The caller's role may not perform this operation (see Roles in the description)."),
    "NotFound": (
        404,
        "The object does not exist or is not visible to the caller; another tenant's object is never revealed.",
    ),
    "Conflict": (
        409,
        "State conflict: the object's current state does not allow this, an identifier is already "
        "registered, or a request with the same `Idempotency-Key` is still in flight.",
    ),
    "UnsupportedMediaType": (
        415,
        "The body is not JSON: send it with `Content-Type: application/json`.",
    ),
    "ValidationFailed": (
        422,
        "Validation failed: `errors` names each field to fix and says what to send.",
    ),
    "TooManyRequests": (
        429,
        "Rate limited (failed authentications from this address, or decision requests with this token): "
        "nothing was done. Retry after the number of seconds in `Retry-After`.",
    ),
    "Unavailable": (503, "The database is unavailable; nothing was changed. Retry later."),
    "DecisionUnavailable": (
        503,
        "A dependency the decision needs is down, or the decision could not be made safely; "
        "nothing was decided or recorded (fail closed). Retry later.",
    ),
}

_CLOCK_HEADER_DOC = {
    "description": "Sandbox and test only (`REMS_ENV=sandbox` or `test`): evaluate the request as if "
    "this were the current time; records show it as the effective time next to the real server "
    "time. An ISO 8601 date and time with a UTC offset, e.g. `2026-11-26T10:00:00Z`. Refused with "
    "400 in production and development.",
    "required": False,
    "schema": {"type": "string", "format": "date-time"},
    "example": "2026-11-26T10:00:00Z",
}

#: flask-smorest's own name for the 422 it adds to every ``@blp.arguments`` operation.
_SMOREST_422 = "UNPROCESSABLE_ENTITY"
_STATE_CHANGES = frozenset({"post", "put", "patch"})
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def register_components(api: Api) -> None:
    """Declare the error body, the error responses and the clock header once, as components."""
    components = api.spec.components
    if ERROR_SCHEMA not in components.schemas:  # flask-smorest may have registered it (``RemsApi.ERROR_SCHEMA``)
        components.schema(ERROR_SCHEMA, schema=ErrorSchema)
    for name, (status, description) in RESPONSES.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        if status == 429:
            response["headers"] = {
                "Retry-After": {"description": "Seconds until the limit's window ends.", "schema": {"type": "integer"}}
            }
        components.response(name, response)
    components.parameter(CLOCK_PARAMETER, "header", {**_CLOCK_HEADER_DOC, "name": CLOCK_HEADER})


def _is_decision(operation: dict[str, Any]) -> bool:
    """Does ``operation`` answer with a Decision (``POST /authorizations``, ``POST /dispenses``)?"""
    responses = operation.get("responses", {})
    created = responses.get(201, responses.get("201"))
    if not isinstance(created, dict):
        return False
    return any(
        isinstance(content.get("schema"), dict)
        and content["schema"].get("$ref", "").rsplit("/", 1)[-1] == DECISION_SCHEMA
        for content in created.get("content", {}).values()
    )


def _has_query(operation: dict[str, Any]) -> bool:
    return any(isinstance(p, dict) and p.get("in") == "query" for p in operation.get("parameters", []))


def statuses(path: str, method: str, operation: dict[str, Any]) -> dict[int, str]:
    """The error statuses ``operation`` can answer, each with its response component."""
    found = {400: "BadRequest"}
    protected = bool(operation.get("security"))
    if protected:
        found[401] = "Unauthorized"
        found[403] = "Forbidden"
        found[429] = "TooManyRequests"
        found[503] = "DecisionUnavailable" if _is_decision(operation) else "Unavailable"
    if "{" in path:
        found[404] = "NotFound"
        found[422] = "ValidationFailed"  # a control character in a path segment
    if protected and method in _STATE_CHANGES:
        found[409] = "Conflict"
    if "requestBody" in operation:
        found[415] = "UnsupportedMediaType"
        found[422] = "ValidationFailed"
    if _has_query(operation):
        found[422] = "ValidationFailed"
    return found


def _with_error_body(code: str, response: Any) -> Any:
    """An error response a view declared without a body gets the error body."""
    if code.startswith(("4", "5")) and isinstance(response, dict) and not response.get("content"):
        return {**response, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    return response


class ConventionsPlugin(BasePlugin):
    """An apispec plugin (``spec_kwargs["extra_plugins"]``): runs on every operation as it is
    registered, after flask-smorest and the marshmallow plugin have described it."""

    def init_spec(self, spec: APISpec) -> None:
        self.spec = spec

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            if method in _METHODS:
                _complete(path or "", method, operation)


def _sort_key(code: str) -> tuple[int, str]:
    return (1, code) if code == "default" else (0, code)


def _complete(path: str, method: str, operation: dict[str, Any]) -> None:
    """Add the error statuses and the clock header to one operation (in place)."""
    declared: dict[str, Any] = {}
    for code, response in operation.get("responses", {}).items():
        if response == _SMOREST_422:
            continue  # flask-smorest's generic 422; replaced by the worded component below
        declared[str(code)] = _with_error_body(str(code), response)
    for status, component in statuses(path, method, operation).items():
        declared.setdefault(str(status), component)
    operation["responses"] = dict(sorted(declared.items(), key=lambda item: _sort_key(item[0])))
    parameters = operation.setdefault("parameters", [])
    if CLOCK_PARAMETER not in parameters:
        parameters.append(CLOCK_PARAMETER)


# -- the interactive documentation (Swagger UI), served from this service ----------------------

#: Where the docs page is; its assets are under ``DOCS_PATH/assets/``.
DOCS_PATH = "/api/v1/docs"
#: Swagger UI's distribution as the flask-swagger-ui package ships it (the ``dist`` folder
#: of swagger-ui-dist, kept current with it): served from here, never from a CDN, so the
#: docs work with no internet. Only the files, not the package's blueprint, whose page
#: starts Swagger UI with an inline script that the CSP refuses.
SWAGGER_UI_DIST = str(files("flask_swagger_ui") / "dist")
#: The one inline ``<style>`` Swagger UI writes: the colours of its logo's SVG.
SWAGGER_LOGO_STYLE = ".logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}"


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: The Content-Security-Policy of the docs page: this origin's scripts and styles only (no
#: inline script); of inline styles only the logo's, by its hash; ``data:`` images for the
#: icons Swagger UI's stylesheet embeds.
DOCS_CSP = (
    f"default-src 'self'; script-src 'self'; style-src 'self' {_csp_hash(SWAGGER_LOGO_STYLE)}; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }} API documentation</title>
  <link rel="stylesheet" href="{{ assets }}/swagger-ui.css">
  <link rel="stylesheet" href="{{ assets }}/index.css">
  <link rel="icon" type="image/png" href="{{ assets }}/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <main id="swagger-ui" data-spec-url="{{ spec_url }}" aria-label="{{ title }} API documentation">
    <noscript><p>The interactive documentation needs JavaScript.
      The OpenAPI document itself is at <a href="{{ spec_url }}">{{ spec_url }}</a>.</p></noscript>
  </main>
  <script src="{{ assets }}/swagger-ui-bundle.js"></script>
  <script src="{{ assets }}/swagger-ui-standalone-preset.js"></script>
  <script src="{{ init }}"></script>
</body>
</html>
"""

#: Starts Swagger UI on the element above, reading the document's URL from its data attribute
#: (a script file of this origin: nothing inline).
_DOCS_INIT = """"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    validatorUrl: null
  });
});
"""

docs_blp = Blueprint("api_docs_ui", __name__, url_prefix=DOCS_PATH)


@docs_blp.after_request
def _docs_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@docs_blp.route("", methods=["GET"])
def docs_page() -> str:
    """The interactive documentation of the OpenAPI document."""
    return render_template_string(
        _DOCS_PAGE,
        title="Lenalidomide REMS",
        assets=f"{DOCS_PATH}/assets",
        init=url_for("api_docs_ui.docs_init"),
        spec_url=url_for("api-docs.openapi_json"),
    )


@docs_blp.route("/init.js", methods=["GET"])
def docs_init() -> Response:
    return Response(_DOCS_INIT, mimetype="text/javascript")


@docs_blp.route("/assets/<path:filename>", methods=["GET"])
def docs_asset(filename: str) -> Response:
    """A file of Swagger UI's distribution (404 for anything else)."""
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=86400)
