"""The Lenalidomide REMS workflow service (Flask application)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from config.settings import load_settings

from . import api, clock, interop, jobs, logs, operations, ratelimit, runtime, web


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Application factory.

    Settings come from ``REMS_ENV`` and the environment (see
    ``config.settings``), then ``overrides``. Start-up fails if the program
    definition is malformed or incomplete.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(load_settings(overrides=overrides))

    logs.init_app(app)  # first: the request id exists before anything can fail
    clock.init_app(app)
    runtime.init_app(app)
    ratelimit.init_app(app)  # before the API: its before-request check runs before authentication
    api.init_app(app)
    interop.init_app(app)  # NCPDP SCRIPT, FHIR and CDS Hooks (INTEROP.md)
    jobs.init_app(app)
    operations.init_app(app)
    web.init_app(app)
    return app
