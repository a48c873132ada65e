"""Structured JSON logs: one object per line with the request id and user id.

Nothing here logs request or response bodies, so no PHI (patient names,
dates of birth) reaches the logs: lines carry ids, paths and statuses.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import TextIO

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from rems_service.context import current

#: Accepted shape of an incoming ``X-Request-Id``; anything else is replaced.
_REQUEST_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

access_log = logging.getLogger("rems.access")


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``user_id`` to every record emitted during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = getattr(g, "request_id", None)
            context = current()
            record.user_id = str(context.actor.user_id) if context is not None and context.actor.user_id else None
        else:
            record.request_id = None
            record.user_id = None
        return True


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at emit time (so redirection is honoured)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr from the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_rems", False):
            root.setLevel(level)
            return
    handler = _StderrHandler()
    handler._rems = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    handler.addFilter(RequestContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # transitions logs every state entry at INFO; our audit log is the record of those.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def _request_id() -> str:
    incoming = request.headers.get("X-Request-Id", "")
    if 0 < len(incoming) <= 64 and set(incoming) <= _REQUEST_ID_CHARS:
        return incoming
    return uuid.uuid4().hex


def init_app(app: Flask) -> None:
    configure_logging(app.config.get("LOG_LEVEL", "INFO"))

    @app.before_request
    def _start() -> None:
        g.request_id = _request_id()
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
            },
        )
        return response
