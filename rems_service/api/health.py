"""Liveness and readiness, outside ``/api/v1`` and public."""

from __future__ import annotations

import logging
from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import text

from rems_service.runtime import get_runtime

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Process liveness and dependency readiness")


@blp.route("/healthz", methods=["GET"])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
def readyz() -> tuple[dict[str, Any], int]:
    """The database is reachable, and Redis too when ``REDIS_URL`` is configured."""
    runtime = get_runtime()
    checks: dict[str, str] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready
        log.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        checks["database"] = "unavailable"
    client = runtime.redis()
    if client is None:
        checks["redis"] = "not configured (jobs run inline)"
    else:
        try:
            client.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            log.warning("readiness: redis unreachable", extra={"error": type(exc).__name__})
            checks["redis"] = "unavailable"
    ready = all(v == "ok" or v.startswith("not configured") for v in checks.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
