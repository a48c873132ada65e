"""Logs on stderr, one line per record, with the request id and user id.

Two formats (``REMS_LOG_FORMAT``): ``text``, a human-readable line (the
default in development and test), and ``json``, one object per line (the
default in sandbox and production). The web process (gunicorn's own lines
too, ``config/gunicorn.py``), the RQ worker and ``rq cron``
(``config/rq_logging.py``) all write through the same handler, so one
console shows one format.

Nothing here logs request or response bodies, so no PHI (patient names,
dates of birth) reaches the logs: lines carry ids, paths and statuses.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import Any, TextIO

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from rems_service.context import current

#: Accepted shape of an incoming ``X-Request-Id``; anything else is replaced.
_REQUEST_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

access_log = logging.getLogger("rems.access")

#: The attributes every ``LogRecord`` has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=value ...`` (the ``extra`` fields, None left out)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt=_DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_") and value is not None
        ]
        if not fields:
            return line
        head, newline, trace = line.partition("\n")  # a traceback stays below the fields
        return f"{head} {' '.join(fields)}{newline}{trace}"


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of ``REMS_LOG_FORMAT`` ``fmt`` (``text`` or ``json``)."""
    if fmt == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt=_DATE_FORMAT,
        )
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"unknown log format {fmt!r} (text or json)")


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


def stderr_handler(fmt: str = "text") -> logging.Handler:
    """The one handler of every process: stderr, in format ``fmt``, with the request's ids.

    ``logging.config.dictConfig`` builds it by name (``"()": "rems_service.logs.stderr_handler"``)
    for gunicorn's and RQ's loggers; ``configure_logging`` then finds it on the root logger."""
    handler = _StderrHandler()
    handler._rems = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestContextFilter())
    return handler


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send lines in format ``fmt`` to stderr from the root logger (idempotent: a second
    call sets the level and format of the handler the first one installed)."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, "_rems", False)]
    if ours:
        for handler in ours:
            handler.setFormatter(formatter(fmt))
    else:
        root.addHandler(stderr_handler(fmt))
    root.setLevel(level)
    # transitions logs every state entry at INFO; our audit log is the record of those.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    # alembic narrates its set-up at INFO on every `rems db upgrade`; the command prints the revision.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def dict_config(level: str, fmt: str, quiet: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document routing every logger to ``stderr_handler``;
    ``quiet`` maps logger names to their level (RQ's per-job lines, gunicorn's access log)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"rems": {"()": f"{__name__}.stderr_handler", "fmt": fmt}},
        "root": {"level": level, "handlers": ["rems"]},
        "loggers": {
            name: {"level": logger_level, "handlers": [], "propagate": True}
            for name, logger_level in (quiet or {}).items()
        },
    }


def _request_id() -> str:
    incoming = request.headers.get("X-Request-Id", "")
    if 0 < len(incoming) <= 64 and set(incoming) <= _REQUEST_ID_CHARS:
        return incoming
    return uuid.uuid4().hex


def init_app(app: Flask) -> None:
    configure_logging(app.config.get("LOG_LEVEL", "INFO"), app.config.get("LOG_FORMAT", "text"))

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
