"""The service's Prometheus metrics (``/metrics``; issue 18, "Operations you can see").

Defined once per process on prometheus_client's default registry, which
prometheus-flask-exporter serves next to its HTTP request metrics. Under
gunicorn with several workers set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory: prometheus_client then writes each worker's samples there and
``/metrics`` adds them up (``config/gunicorn.py`` marks exited workers dead).
The gauges are set when ``/metrics`` is read, so they are the latest reading.

Anything may count here (services, jobs, the rate limiter): this module imports
nothing of the service.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

#: Decisions by endpoint (``authorizations``, ``dispenses``) and outcome (``approved``, ``denied``).
DECISIONS = Counter("rems_decisions", "Decisions recorded", ["endpoint", "outcome"])
#: Each reason code of each recorded decision (a denial counts every reason it lists).
DECISION_REASONS = Counter(
    "rems_decision_reasons", "Reason codes of recorded decisions", ["endpoint", "outcome", "reason"]
)
#: Time to decide and record, from the service's entry to its answer (idempotent replays excluded).
DECISION_SECONDS = Histogram(
    "rems_decision_duration_seconds",
    "Time to decide and record a decision",
    ["endpoint", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
#: Webhook attempts by coarse outcome (delivered, refused, unreachable, timed_out).
WEBHOOK_DELIVERIES = Counter("rems_webhook_deliveries", "Webhook delivery attempts", ["outcome"])
#: Requests refused by a rate limit (429), by the limit's name.
RATE_LIMIT_REFUSALS = Counter("rems_rate_limit_refusals", "Requests refused by a rate limit", ["limit"])
OUTBOX_UNSENT = Gauge("rems_outbox_unsent_events", "Outbox events not yet relayed", multiprocess_mode="mostrecent")
OUTBOX_LAG = Gauge(
    "rems_outbox_lag_seconds",
    "Age of the oldest outbox event not yet relayed (0 when none waits)",
    multiprocess_mode="mostrecent",
)


def decision_recorded(endpoint: str, outcome: str, reason_codes: Iterable[str], seconds: float) -> None:
    """Count one recorded decision, its reasons and how long it took."""
    DECISIONS.labels(endpoint=endpoint, outcome=outcome).inc()
    DECISION_SECONDS.labels(endpoint=endpoint, outcome=outcome).observe(seconds)
    for code in reason_codes:
        DECISION_REASONS.labels(endpoint=endpoint, outcome=outcome, reason=code).inc()


def rate_limit_refused(limit: str) -> None:
    """Count one request refused by the rate limit named ``limit`` (call it where the 429 is made)."""
    RATE_LIMIT_REFUSALS.labels(limit=limit).inc()


def outbox_observed(unsent: int, lag_seconds: float) -> None:
    OUTBOX_UNSENT.set(unsent)
    OUTBOX_LAG.set(lag_seconds)
