"""Where a job goes: the RQ queue, or — with no Redis configured — this process."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from rq import Queue
from rq.serializers import JSONSerializer

from rems_service.runtime import Runtime

log = logging.getLogger(__name__)


class Dispatcher:
    """Enqueue jobs by dotted path with deterministic ids (``[A-Za-z0-9_-]``).

    Inline (no ``REDIS_URL``): ``enqueue`` runs the job now, in this process;
    ``enqueue_at`` does nothing, because RQ ignores synchronous mode for
    scheduled jobs and the sweeps carry every scheduled obligation anyway.
    """

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    @property
    def inline(self) -> bool:
        return not self.runtime.redis_url

    def queue(self) -> Queue:
        return Queue(self.runtime.settings["QUEUE_NAME"], connection=self.runtime.redis(), serializer=JSONSerializer)

    def enqueue(self, func: str, *args: Any, job_id: str) -> None:
        if self.inline:
            from . import tasks

            tasks.run_inline(self.runtime, func, *args)
            return
        self.queue().enqueue(func, *args, job_id=job_id, result_ttl=3600, failure_ttl=7 * 86400)

    def enqueue_at(self, when: datetime, func: str, *args: Any, job_id: str) -> None:
        if self.inline:
            return
        # RQ's scheduler keeps whole seconds (it floors): round up, so a job never
        # runs before the time it is meant for (it would find nothing due and stop).
        if when.microsecond:
            when = when.replace(microsecond=0) + timedelta(seconds=1)
        self.queue().enqueue_at(when, func, *args, job_id=job_id, result_ttl=3600, failure_ttl=7 * 86400)
