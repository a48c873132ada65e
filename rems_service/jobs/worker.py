"""The RQ worker class of the Procfile (``rq worker -w rems_service.jobs.worker.RemsWorker``).

It builds the app once in the worker process, before RQ forks a work horse
per job, so a job does not pay for importing and configuring the service.
No database connection is opened before the fork: each horse drops the
inherited (empty) pool and opens its own (``tasks.runtime``).
"""

from __future__ import annotations

from typing import Any

from rq import Worker

from . import tasks


class RemsWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        tasks.runtime()
