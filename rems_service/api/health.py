"""Liveness and readiness, outside ``/api/v1`` and public."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from rems_service.runtime import get_runtime
from rems_service.schemas.health import ReadinessSchema
from rems_service.services import health

blp = Blueprint("health", __name__, description="Process liveness and dependency readiness")


@blp.route("/healthz", methods=["GET"])
@blp.doc(
    responses={
        "200": {
            "description": "The process is up: `{status: ok}`.",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}}
                }
            },
        }
    }
)
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, ReadinessSchema, description="Ready (`status: ready`), or degraded: Redis is down.")
@blp.alt_response(503, schema=ReadinessSchema, description="Not ready: `checks` names what failed.")
def readyz() -> tuple[dict[str, Any], int]:
    """The database is reachable (503 otherwise); Redis too when ``REDIS_URL`` is configured, else
    `status: degraded` with 200: decisions still work without it (events wait in the outbox).
    Names the environment (``REMS_ENV``), so a client can tell a sandbox from production."""
    runtime = get_runtime()
    client = runtime.redis()
    result = health.readiness(runtime.read, client.ping if client is not None else None)
    body = {
        "status": ("degraded" if result.degraded else "ready") if result.ready else "unavailable",
        "environment": runtime.settings["ENV_NAME"],
        "checks": result.checks,
    }
    return body, 200 if result.ready else 503
