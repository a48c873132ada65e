"""Operations you can see (issue 18): Prometheus metrics at ``/metrics`` and the job
queue's state at ``/admin/queues``, both for admins only (a bearer token of the admin
role) unless ``METRICS_PUBLIC`` opens ``/metrics`` to a scraper on a private network.

``/metrics`` is prometheus-flask-exporter's endpoint: its HTTP request metrics plus the
service's own (``rems_service.metrics``): decisions by endpoint, outcome and reason
code, decision latency histograms, the outbox's backlog and lag (read when scraped),
webhook delivery outcomes and rate-limit refusals. ``/admin/queues`` reads RQ's own
registries (queued, started, scheduled, deferred, failed, finished), its workers and
the newest failed jobs (function, id arguments, exception type).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import Flask, current_app, jsonify
from prometheus_flask_exporter import PrometheusMetrics
from rq import Worker
from rq.job import Job

from rems_service import metrics
from rems_service.auth import auth
from rems_service.jobs.dispatch import JSONQueue
from rems_service.runtime import get_runtime
from rems_service.services import operations
from rems_service.services.errors import Forbidden

METRICS_PATH = "/metrics"
#: The newest failed jobs listed by ``/admin/queues``.
FAILED_SHOWN = 20
QUEUES_PATH = "/admin/queues"


def admin_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """A bearer token of the admin role (401 without a valid token, 403 for other roles)."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        actor = auth.current_user()
        if actor is None or not actor.is_admin:
            raise Forbidden("Only admins may read this.")
        return view(*args, **kwargs)

    return auth.login_required(guarded)


def _metrics_guard(view: Callable[..., Any]) -> Callable[..., Any]:
    """prometheus-flask-exporter's ``metrics_decorator``: the outbox gauges are read, then
    the metrics served to admins (or to anyone with ``METRICS_PUBLIC``)."""

    @wraps(view)
    def observed(*args: Any, **kwargs: Any) -> Any:
        state = operations.outbox_state(get_runtime().read(), datetime.now(UTC))
        metrics.outbox_observed(state.unsent, state.lag_seconds)
        return view(*args, **kwargs)

    protected = admin_only(observed)

    @wraps(view)
    def scrape(*args: Any, **kwargs: Any) -> Any:
        handler = observed if current_app.config.get("METRICS_PUBLIC") else protected
        return handler(*args, **kwargs)

    return scrape


def queue_state(runtime: Any) -> dict[str, Any]:
    """RQ's view of the service's queue, or that there is none (jobs run in-process)."""
    client = runtime.redis()
    if client is None:
        return {"mode": "inline", "queues": [], "workers": [], "failed_jobs": []}
    queue = JSONQueue(runtime.settings["QUEUE_NAME"], connection=client)
    registries = {
        "started": queue.started_job_registry,
        "scheduled": queue.scheduled_job_registry,
        "deferred": queue.deferred_job_registry,
        "failed": queue.failed_job_registry,
        "finished": queue.finished_job_registry,
    }
    counts = {"queued": queue.count, **{name: registry.count for name, registry in registries.items()}}
    workers = [
        {
            "name": worker.name,
            "state": str(worker.get_state()),
            "queues": worker.queue_names(),
            "successful_jobs": worker.successful_job_count,
            "failed_jobs": worker.failed_job_count,
        }
        for worker in Worker.all(queue=queue)
    ]
    failed_ids = queue.failed_job_registry.get_job_ids(0, FAILED_SHOWN - 1)
    failed = [
        {
            "id": job.id,
            "function": job.func_name,
            "args": list(job.args),  # ids only: jobs take nothing else
            "ended_at": job.ended_at.isoformat() if job.ended_at else None,
            "error": _error_type(job),
        }
        for job in Job.fetch_many(failed_ids, connection=client, serializer=queue.serializer)
        if job is not None
    ]
    return {"mode": "rq", "queues": [{"name": queue.name, **counts}], "workers": workers, "failed_jobs": failed}


def _error_type(job: Job) -> str | None:
    """The failed job's exception type only (its message could quote data)."""
    result = job.latest_result()
    text = ((result.exc_string if result is not None else None) or "").strip()
    return text.splitlines()[-1].split(":", 1)[0] if text else None


def init_app(app: Flask) -> None:
    PrometheusMetrics(app, path=METRICS_PATH, group_by="url_rule", metrics_decorator=_metrics_guard)

    @app.route(QUEUES_PATH, methods=["GET"])
    @admin_only
    def admin_queues() -> Any:
        """The job queue's counts by RQ registry and its workers (admins)."""
        return jsonify(queue_state(get_runtime()))
