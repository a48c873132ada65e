"""Liveness and readiness, outside ``/api/v1`` and public."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from rems_service.runtime import get_runtime
from rems_service.services import health

blp = Blueprint("health", __name__, description="Process liveness and dependency readiness")


@blp.route("/healthz", methods=["GET"])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
def readyz() -> tuple[dict[str, Any], int]:
    """The database is reachable, and Redis too when ``REDIS_URL`` is configured."""
    runtime = get_runtime()
    client = runtime.redis()
    result = health.readiness(runtime.read, client.ping if client is not None else None)
    return {"status": "ready" if result.ready else "unavailable", "checks": result.checks}, 200 if result.ready else 503
