"""The RQ worker class of the Procfile (``rq worker -w rems_service.jobs.worker.RemsWorker``).

It builds the app's runtime once in the worker process, before RQ forks a
work horse per job, so a job does not pay for importing and configuring the
service. No database connection is opened before the fork: each horse drops
the inherited (empty) pool and opens its own (``dispatch.job_runtime``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from rq import Worker

from config.settings import banner
from rems_service.runtime import APP_NAME, Runtime, build_standalone

from . import tasks  # noqa: F401  (every job module is imported before the fork)
from .dispatch import install_process_runtime


def build_runtime() -> Runtime:
    return build_standalone()


class RemsWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        runtime = install_process_runtime(build_runtime)
        logging.getLogger("rems.startup").info(
            banner(runtime.settings, Flask(APP_NAME).instance_path, f"worker on queues {', '.join(self.queue_names())}")
        )
