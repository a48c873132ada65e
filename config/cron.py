"""``rq cron config/cron.py``: the periodic work (see rems_service.jobs).

The sweeps mirror expiries, remind prescribers and pharmacies, retry due
webhook deliveries and relay the outbox; the relay also runs on its own
every second, so events reach the queue within a second of their commit (web
requests do not relay when a queue is configured). Both are idempotent, so a
second cron process or a missed run does no harm.

Serializer. Our worker reads JSON only, and rq 3.0's cron has no serializer
setting: ``CronJob.enqueue`` builds ``Queue(name, connection=...)`` with the
default (pickle) serializer; ``rq cron --serializer json`` is parsed by the CLI
and not passed on; neither ``rq.cron.register`` nor ``CronScheduler`` takes one
(rq 3.0.0 ``rq/cron.py``, ``rq/cli/cli_cron.py``). Registering a job without
arguments does not help: RQ serializes the whole call (function name included),
so a JSON worker could not even read which function to run. ``CronJob.enqueue``
is the only place ``rq.cron`` builds a queue, and it finds the ``Queue`` class by
its module-level name; ``use_json_queues`` points that name at a JSON queue
class, explicitly and only in the process that loads this file (``rq cron``).
Drop it when rq's cron takes a serializer.
"""

from __future__ import annotations

import rq.cron

from rems_service.jobs import tasks
from rems_service.jobs.dispatch import JSONQueue

QUEUE = "rems"


def use_json_queues() -> None:
    """Make ``rq cron`` enqueue with the JSON serializer (see the module docstring)."""
    # rq 3.0 offers no setting for this. ``Queue`` is a name rq.cron imports, not one it exports
    # (attr-defined), and JSONQueue takes only the (name, connection=) that CronJob.enqueue passes,
    # not every parameter of Queue's constructor (assignment).
    rq.cron.Queue = JSONQueue  # type: ignore[attr-defined,assignment]


use_json_queues()
rq.cron.register(tasks.run_sweeps, QUEUE, interval=60, job_timeout=600)
rq.cron.register(tasks.relay, QUEUE, interval=1, job_timeout=120)
