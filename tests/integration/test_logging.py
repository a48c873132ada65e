"""Log lines: readable text or JSON, one handler for every process, and jobs that log
what they did (an idle relay or sweep writes nothing)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from rems_service.jobs import tasks
from rems_service.jobs.relay import relay_outbox
from rems_service.logs import dict_config, formatter
from rems_service.services import prescribers
from workflows.actors import SYSTEM


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("rems.access", logging.INFO, __file__, 1, "request", (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_text_lines_are_readable_with_their_fields():
    line = formatter("text").format(_record(method="GET", status=200, request_id="req-1", user_id=None))
    assert line.endswith(" INFO    rems.access: request method=GET status=200 request_id=req-1"), line
    assert "user_id" not in line  # fields without a value are left out


def test_json_lines_are_one_object_each():
    line = formatter("json").format(_record(method="GET", status=200, request_id="req-1", user_id=None))
    data = json.loads(line)
    assert data["logger"] == "rems.access" and data["level"] == "INFO" and data["status"] == 200
    assert data["request_id"] == "req-1"


def test_rq_and_gunicorn_loggers_share_the_service_handler():
    config = dict_config("INFO", "json", {"rq": "WARNING"})
    assert config["root"] == {"level": "INFO", "handlers": ["rems"]}
    assert config["handlers"]["rems"] == {"()": "rems_service.logs.stderr_handler", "fmt": "json"}
    assert config["loggers"]["rq"] == {"level": "WARNING", "handlers": [], "propagate": True}
    assert config["disable_existing_loggers"] is False


def test_relay_and_sweeps_log_what_they_did_and_nothing_when_idle(runtime, caplog):
    caplog.set_level(logging.INFO)
    now = datetime.now(UTC)
    relay_outbox(runtime)  # whatever set-up left in the outbox
    tasks.run_sweeps(runtime, now)
    caplog.clear()
    assert relay_outbox(runtime) == 0
    tasks.run_sweeps(runtime, now)
    assert [r for r in caplog.records if r.name.startswith("rems_service.jobs")] == []

    prescribers.register(
        runtime.uow(), SYSTEM, now, npi="1245319599", first_name="Log", last_name="Line", email="l@example.org"
    )
    assert relay_outbox(runtime) == 1
    (line,) = [r for r in caplog.records if r.name.startswith("rems_service.jobs")]
    assert line.getMessage().startswith("outbox relay:") and line.events == 1
