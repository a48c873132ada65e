"""``rq cron config/cron.py``: the periodic work (see rems_service.jobs).

The sweeps mirror expiries, remind prescribers and pharmacies, retry due
webhook deliveries and relay the outbox; the relay also runs on its own
every second, so events reach the queue within a second of their commit (web
requests do not relay when a queue is configured). Both are idempotent, so a
second cron process or a missed run does no harm. A signed anchor of the
audit chain is published outside the database every
``REMS_AUDIT_ANCHOR_INTERVAL_SECONDS`` (an hour by default); a head that has
not moved since the last anchor is not anchored again.

rq 3.0's cron enqueues with RQ's default (pickle) serializer whatever
``--serializer`` says; what it writes for these jobs is plain values (the
function's dotted name and empty arguments), which the worker's
``rems_service.jobs.serialization.JobSerializer`` reads, while it refuses any
pickle that would import something.
"""

from __future__ import annotations

import logging

import rq.cron
from flask import Flask

from config.settings import banner, load_settings
from rems_service.jobs import tasks
from rems_service.runtime import APP_NAME

_settings = load_settings()
#: The queue the worker serves (``QUEUE_NAME``, as the web process and the jobs use it).
QUEUE = _settings["QUEUE_NAME"]

logging.getLogger("rems.startup").info(banner(_settings, Flask(APP_NAME).instance_path, "cron"))

# A signed anchor of the audit chain, published outside the database (README "Audit chain").
# Registered first: at start every job is due at once and is enqueued in this order, so the
# first anchor's audit.anchored event leaves with the first sweep's relay.
rq.cron.register(
    tasks.publish_audit_anchor, QUEUE, interval=int(_settings["AUDIT_ANCHOR_INTERVAL_SECONDS"]), job_timeout=3600
)
rq.cron.register(tasks.run_sweeps, QUEUE, interval=60, job_timeout=600)
rq.cron.register(tasks.relay, QUEUE, interval=1, job_timeout=120)
