"""Must-show 4 of issue 18: after the whole suite, no patient name or date of birth used
by any test appears in any captured log line.

Works under pytest-xdist: each process (worker, or the only one in a serial run)

- copies every log record it emits, formatted with all its fields and any
  traceback, to ``lines-<worker>.log`` (a handler kept on the root logger);
- collects the PHI the tests used: every patient row inserted (an ORM event on
  ``Patient``), and the ``first_name``, ``last_name``, ``guardian_name`` and
  ``date_of_birth`` of every request body sent to any app (Flask's
  ``request_started`` signal), refused ones included; written to ``terms-<worker>.txt``.

The controller (or the serial process) scans every worker's lines for every worker's
terms once all have finished (``pytest_sessionfinish``) and fails the run on a hit.
Subprocesses (gunicorn and RQ workers started by tests) are not captured here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import request, request_started
from sqlalchemy import event

from rems_service.db.models import Patient
from rems_service.logs import TextFormatter

ENV = "REMS_LOGSCAN_DIR"
PHI_KEYS = frozenset({"first_name", "last_name", "guardian_name", "date_of_birth"})
#: Names shorter than this are too common to tell a leak from chance (ids, words).
MIN_NAME = 3
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_terms: set[str] = set()
_handler: logging.Handler | None = None


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class _CopyHandler(logging.Handler):
    """Appends each record, formatted with its extra fields and traceback, to the worker's file."""

    def __init__(self, path: Path):
        super().__init__(level=logging.DEBUG)
        self.path = path
        self.setFormatter(TextFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted: keep its raw parts
            line = f"{record.msg!r} {record.args!r} {vars(record)!r}"
        with open(self.path, "a", encoding="utf-8", errors="backslashreplace") as out:
            out.write(line.replace("\n", "\\n") + "\n")


def _add(value: Any) -> None:
    if isinstance(value, str):
        value = value.strip()
        if len(value) >= MIN_NAME and any(c.isalpha() for c in value) or _DATE.match(value):
            _terms.add(value)
    elif hasattr(value, "isoformat"):
        _terms.add(value.isoformat())


def _walk(value: Any, depth: int = 0) -> Iterator[Any]:
    if depth > 20:
        return
    if isinstance(value, dict):
        for key, member in value.items():
            if key in PHI_KEYS:
                yield member
            else:
                yield from _walk(member, depth + 1)
    elif isinstance(value, list):
        for member in value:
            yield from _walk(member, depth + 1)


def _on_request(_sender: Any, **_extra: Any) -> None:
    try:
        body = request.get_json(silent=True, cache=True) if request.is_json else None
        for value in _walk(body):
            _add(value)
        for key in PHI_KEYS & set(request.form):
            _add(request.form[key])
    except Exception:  # bodies the app itself refuses (50,000-deep JSON): nothing to collect
        return


def _on_patient(_mapper: Any, _connection: Any, target: Patient) -> None:
    for value in (target.first_name, target.last_name, target.guardian_name, target.date_of_birth):
        _add(value)


def directory() -> Path:
    return Path(os.environ[ENV])


def configure(config: Any) -> None:
    """Every process: make the shared directory (controller) and start capturing."""
    if not hasattr(config, "workerinput") and ENV not in os.environ:
        os.environ[ENV] = tempfile.mkdtemp(prefix="rems-logscan-")  # inherited by xdist workers
        config._rems_logscan_owner = True
    event.listen(Patient, "after_insert", _on_patient)
    request_started.connect(_on_request)
    ensure_handler()


def ensure_handler() -> None:
    """Keep the copying handler on the root logger (a test's ``dictConfig`` may replace handlers)."""
    global _handler
    if ENV not in os.environ:
        return
    if _handler is None:
        _handler = _CopyHandler(directory() / f"lines-{_worker()}.log")
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)


def _session_dates() -> set[str]:
    """Dates a log line carries as its own timestamp: not a leak when a test's birth date is today."""
    today = datetime.now(UTC).date()
    return {(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)}


def find_leaks(lines: Iterable[str], terms: Iterable[str]) -> list[tuple[str, str]]:
    """Each (term, line) where a PHI term occurs in a log line: names as whole words
    (case-sensitive), dates of birth as written (YYYY-MM-DD) outside the timestamp dates."""
    skip = _session_dates()
    chosen = sorted({t for t in terms if t not in skip}, key=len, reverse=True)
    if not chosen:
        return []
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(t) for t in chosen) + r")(?![\w-])")
    return [(m.group(1), line) for line in lines if (m := pattern.search(line))]


def finish(session: Any) -> None:
    """Workers write their terms; the controller (or a serial run) scans every file."""
    if ENV not in os.environ:
        return
    (directory() / f"terms-{_worker()}.json").write_text(json.dumps(sorted(_terms)))
    if hasattr(session.config, "workerinput"):
        return
    terms: set[str] = set()
    for path in directory().glob("terms-*.json"):
        terms.update(json.loads(path.read_text()))
    leaks: list[tuple[str, str]] = []
    for path in sorted(directory().glob("lines-*.log")):
        with open(path, encoding="utf-8") as lines:
            leaks.extend(find_leaks(lines, terms))
    if getattr(session.config, "_rems_logscan_owner", False):
        if _handler is not None:
            logging.getLogger().removeHandler(_handler)
        shutil.rmtree(directory(), ignore_errors=True)
    if leaks:
        report = "\n".join(f"  {term!r} in: {line.strip()[:300]}" for term, line in leaks[:20])
        session.config.get_terminal_writer().line(
            f"\nLOG SCAN FAILED (issue 18, must-show 4): {len(leaks)} log lines carry a patient's name "
            f"or date of birth used by a test:\n{report}",
            red=True,
        )
        session.exitstatus = 1
