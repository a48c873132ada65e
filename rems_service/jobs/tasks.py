"""The periodic jobs ``rq cron`` runs (``config/cron.py``), and ``rems jobs sweep``.

The top layer of ``rems_service.jobs``: the sweeps end with an outbox relay.
Called by RQ with no arguments, each job works with ``job_runtime()``; called
in-process (the command line, tests) it takes the runtime to work with.
"""

from __future__ import annotations

import logging
from datetime import datetime

from rems_service.runtime import Runtime
from rems_service.services import audit_log, sweeps, webhooks

from .dispatch import dispatcher_for, job_runtime
from .handlers import deliver_webhook, utcnow
from .relay import relay_outbox

log = logging.getLogger(__name__)


def run_sweeps(runtime: Runtime | None = None, now: datetime | None = None) -> dict[str, int]:
    """Every periodic sweep once, then due webhook retries (handed to the queue when there is
    one, posted here otherwise), then the outbox relay."""
    rt = runtime or job_runtime()
    now = now or utcnow()
    report = sweeps.run(rt.uow, rt.program, now)
    dispatcher = dispatcher_for(rt)
    for delivery_id in webhooks.due(rt.uow(), now):
        if not dispatcher.inline:
            # With a queue, the worker posts it: a slow receiver never holds up the sweeps
            # and the relay after them (an attempt already queued or running is claimed once).
            try:
                dispatcher.enqueue(deliver_webhook, str(delivery_id), job_id=f"webhook-{delivery_id}-due")
            except Exception as exc:
                log.warning("could not queue due webhook deliveries", extra={"error": type(exc).__name__})
                break
            report.add("webhook_attempts_queued", 1)
            continue
        outcome = webhooks.attempt(rt.uow, rt.settings, delivery_id, lambda: max(now, utcnow()))
        if outcome is not None:
            report.add("webhook_attempts", 1)
    report.add("events_relayed", relay_outbox(rt))
    done = {name: n for name, n in report.counts.items() if n}
    if done:  # a sweep that found nothing to do logs nothing
        log.info("sweeps did work", extra=done)
    return report.counts


def relay(runtime: Runtime | None = None) -> int:
    """Hand the unsent outbox events on (every second under cron)."""
    return relay_outbox(runtime or job_runtime())


def publish_audit_anchor(runtime: Runtime | None = None, now: datetime | None = None) -> dict[str, object]:
    """Sign the audit chain's head and publish it outside the database (the anchor directory)
    with an ``audit.anchored`` event (every ``AUDIT_ANCHOR_INTERVAL_SECONDS`` under cron).

    A chain that does not verify gets no anchor; the service logs an error."""
    rt = runtime or job_runtime()
    assert rt.audit_key is not None, "the runtime loads the audit key"
    result = audit_log.publish_anchor(rt.uow, rt.audit_key, audit_log.AnchorSink(rt.anchor_dir), now or utcnow())
    if result["published"]:
        log.info("audit anchor published", extra={"seq": result["seq"], "file": result["file"]})
    return result
