"""``rq cron config/cron.py``: the periodic work (see rems_service.jobs).

The sweeps mirror expiries, remind prescribers and pharmacies, retry due
webhook deliveries and relay the outbox; the relay also runs on its own
every second, so events reach the queue within a second of their commit (web
requests do not relay when a queue is configured). Both are idempotent, so a
second cron process or a missed run does no harm.
"""

import rq.cron
from rq import Queue, cron
from rq.serializers import JSONSerializer

from rems_service.jobs import tasks

QUEUE = "rems"


class JSONQueue(Queue):
    """rq 3.0's ``CronJob.enqueue`` builds ``Queue(name, connection=...)`` with the
    default (pickle) serializer and ignores ``rq cron --serializer``; our worker
    reads JSON only, so every cron job would fail to deserialize. Loading this
    file makes cron enqueue through this class instead."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("serializer", JSONSerializer)
        super().__init__(*args, **kwargs)


rq.cron.Queue = JSONQueue  # type: ignore[misc]

cron.register(tasks.run_sweeps, QUEUE, interval=60, job_timeout=600)
cron.register(tasks.relay, QUEUE, interval=1, job_timeout=120)
