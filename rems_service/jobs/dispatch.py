"""Where a job runs: the RQ queue, or — with no Redis configured — this process.

The bottom layer of ``rems_service.jobs`` (dispatch < handlers < relay < tasks):
it knows no job. A job is a plain module-level function taking string ids only
(the queue's serializer is JSON); it is defined once and handed over by
reference, e.g. ``dispatcher.enqueue(handlers.deliver_webhook, str(id), job_id=...)``.
RQ stores its import path; the inline dispatcher calls the same function now.

A job finds the runtime it works with through ``job_runtime()``: the one the
inline dispatcher bound around the call, or else this process's runtime, which
the worker installs (``install_process_runtime``) before RQ forks work horses.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, Protocol

from redis import Redis
from rq import Queue

from rems_service.runtime import Runtime

from .serialization import JobSerializer

log = logging.getLogger(__name__)

#: A job: a module-level function of string ids.
Job = Callable[..., object]

#: How long RQ keeps a finished job's result, and a failed job for inspection.
RESULT_TTL = 3600
FAILURE_TTL = 7 * 86400


class Dispatcher(Protocol):
    """Hands jobs on with deterministic ids (``[A-Za-z0-9_-]``)."""

    #: True when ``enqueue`` runs the job before it returns (no queue).
    inline: bool

    def enqueue(self, func: Job, *args: str, job_id: str) -> None: ...

    def enqueue_at(self, when: datetime, func: Job, *args: str, job_id: str) -> None: ...


class JSONQueue(Queue):
    """An RQ queue that writes its jobs as JSON (string ids only) and reads them as the
    worker does (``rq worker --serializer rems_service.jobs.serialization.JobSerializer``)."""

    def __init__(self, name: str = "default", connection: Redis | None = None, **kwargs: Any):
        kwargs.setdefault("serializer", JobSerializer)
        super().__init__(name, connection=connection, **kwargs)


class QueueLike(Protocol):
    """The part of ``rq.Queue`` the RQ dispatcher uses."""

    def enqueue(self, f: Job, *args: object, **kwargs: object) -> object: ...

    def enqueue_at(self, datetime: datetime, f: Job, *args: object, **kwargs: object) -> object: ...


class RQDispatcher:
    """Jobs go to an RQ queue (JSON serializer); ``rq worker --with-scheduler`` runs them."""

    inline = False

    def __init__(self, queue: QueueLike):
        self.queue = queue

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> RQDispatcher:
        return cls(JSONQueue(runtime.settings["QUEUE_NAME"], connection=runtime.redis()))

    def enqueue(self, func: Job, *args: str, job_id: str) -> None:
        self.queue.enqueue(func, *args, job_id=job_id, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)

    def enqueue_at(self, when: datetime, func: Job, *args: str, job_id: str) -> None:
        # RQ's scheduler keeps whole seconds (it floors): round up, so a job never
        # runs before the time it is meant for (it would find nothing due and stop).
        if when.microsecond:
            when = when.replace(microsecond=0) + timedelta(seconds=1)
        self.queue.enqueue_at(when, func, *args, job_id=job_id, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)


def run_now(func: Job, *args: str) -> object:
    """The default inline runner: call the job."""
    return func(*args)


class InlineDispatcher:
    """No queue: ``enqueue`` runs the job now, in this process, with ``runtime`` bound
    for ``job_runtime()``; its exceptions reach the caller. ``enqueue_at`` does
    nothing: RQ's synchronous queue ignores scheduled jobs too (and still needs a
    Redis connection), and the sweeps carry every scheduled obligation anyway."""

    inline = True

    def __init__(self, runtime: Runtime, runner: Callable[..., object] = run_now):
        self.runtime = runtime
        self.runner = runner

    def enqueue(self, func: Job, *args: str, job_id: str) -> None:
        with bound(self.runtime):
            self.runner(func, *args)

    def enqueue_at(self, when: datetime, func: Job, *args: str, job_id: str) -> None:
        log.debug("inline mode: scheduled job left to the sweeps", extra={"job_id": job_id})


def dispatcher_for(runtime: Runtime) -> Dispatcher:
    """The RQ queue when ``REDIS_URL`` is set, else this process."""
    if runtime.redis_url:
        return RQDispatcher.for_runtime(runtime)
    return InlineDispatcher(runtime)


_bound: ContextVar[Runtime | None] = ContextVar("rems_job_runtime", default=None)


@contextmanager
def bound(runtime: Runtime) -> Iterator[Runtime]:
    """Run the jobs called inside this block against ``runtime``."""
    token = _bound.set(runtime)
    try:
        yield runtime
    finally:
        _bound.reset(token)


class ProcessRuntime:
    """The runtime of a worker process. Built by the worker before it forks (no
    database connection is opened yet); a forked work horse takes it over after
    dropping what it inherited (``Runtime.after_fork``)."""

    def __init__(self) -> None:
        self._factory: Callable[[], Runtime] | None = None
        self._runtime: Runtime | None = None
        self._pid = 0

    def install(self, factory: Callable[[], Runtime]) -> Runtime:
        self._factory = factory
        self._runtime = None
        return self.get()

    def get(self) -> Runtime:
        pid = os.getpid()
        if self._runtime is None:
            if self._factory is None:
                raise RuntimeError(
                    "no runtime for this job: run RQ workers as `rq worker -w rems_service.jobs.worker.RemsWorker`"
                )
            self._runtime = self._factory()
        elif self._pid != pid:
            self._runtime.after_fork()
        self._pid = pid
        return self._runtime


_process = ProcessRuntime()


def install_process_runtime(factory: Callable[[], Runtime]) -> Runtime:
    """Build this process's runtime with ``factory`` (the worker does, before forking)."""
    return _process.install(factory)


def job_runtime() -> Runtime:
    """The runtime a job works with: the bound one (inline), else this process's."""
    return _bound.get() or _process.get()
