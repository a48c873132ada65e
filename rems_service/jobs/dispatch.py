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
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


#: Jobs that may run on a background thread of their own (``detachable``).
_DETACHABLE: set[Job] = set()


def detachable(func: Job) -> Job:
    """Mark a job whose obligation lives in the database (a webhook attempt: its row and
    lease), so that without a queue it may run on the background delivery threads."""
    _DETACHABLE.add(func)
    return func


class Background:
    """Without a queue, the work that follows a write request runs on threads of this
    process, never in the request's path (issue 18: a receiver trickling a byte a second
    once stalled every caller): one thread relays the outbox (a relay asked for while one
    runs is coalesced into a single next run) and ``threads`` threads post webhook
    deliveries, so a slow receiver holds one delivery thread, for at most the attempt's
    total deadline. The obligations stay in the database: a process that exits with work
    queued here leaves it to the sweeps."""

    def __init__(self, runtime: Runtime, threads: int):
        self.runtime = runtime
        self.relays = ThreadPoolExecutor(1, thread_name_prefix="rems-relay")
        self.deliveries = ThreadPoolExecutor(max(1, threads), thread_name_prefix="rems-webhook")
        self._lock = threading.Condition()
        self._relay_waiting = False
        self._busy = 0

    def relay(self, relay: Callable[[], object]) -> None:
        """Run ``relay`` on the relay thread (unless a run is already waiting to start)."""
        with self._lock:
            if self._relay_waiting:
                return
            self._relay_waiting = True
            self._busy += 1
        self.relays.submit(self._run_relay, relay).add_done_callback(self._done)

    def _run_relay(self, relay: Callable[[], object]) -> None:
        with self._lock:
            self._relay_waiting = False
        token = _detach_to.set(self)
        try:
            with bound(self.runtime):
                relay()
        except Exception as exc:  # the events stay in the outbox; the sweeps relay them
            log.warning("background relay failed", extra={"error": type(exc).__name__})
        finally:
            _detach_to.reset(token)

    def detach(self, func: Job, *args: str) -> None:
        with self._lock:
            self._busy += 1
        self.deliveries.submit(self._run_job, func, args).add_done_callback(self._done)

    def _run_job(self, func: Job, args: tuple[str, ...]) -> None:
        try:
            with bound(self.runtime):
                func(*args)
        except Exception as exc:  # the delivery row keeps the obligation; the sweeps retry it
            log.warning("background job failed", extra={"job": func.__name__, "error": type(exc).__name__})

    def _done(self, _future: Future[None]) -> None:
        with self._lock:
            self._busy -= 1
            self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running here; False if ``timeout`` passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: self._busy == 0, timeout)


_detach_to: ContextVar[Background | None] = ContextVar("rems_background", default=None)
_backgrounds_lock = threading.Lock()


def background_for(runtime: Runtime) -> Background:
    """The runtime's background threads (created on first use, in the process using them:
    after gunicorn's fork, never before)."""
    with _backgrounds_lock:
        found = runtime.extensions.get("background")
        if not isinstance(found, Background):
            found = runtime.extensions["background"] = Background(
                runtime, int(runtime.settings.get("WEBHOOK_DELIVERY_THREADS", 4))
            )
        return found


class InlineDispatcher:
    """No queue: ``enqueue`` runs the job now, in this process, with ``runtime`` bound
    for ``job_runtime()``; its exceptions reach the caller. On the background relay
    thread a ``detachable`` job (a webhook attempt) is handed to the delivery threads
    instead. ``enqueue_at`` does nothing: RQ's synchronous queue ignores scheduled jobs
    too (and still needs a Redis connection), and the sweeps carry every scheduled
    obligation anyway."""

    inline = True

    def __init__(self, runtime: Runtime, runner: Callable[..., object] = run_now):
        self.runtime = runtime
        self.runner = runner

    def enqueue(self, func: Job, *args: str, job_id: str) -> None:
        background = _detach_to.get()
        if background is not None and func in _DETACHABLE:
            background.detach(func, *args)
            return
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
