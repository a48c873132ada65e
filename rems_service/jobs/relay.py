"""The transactional outbox's relay: hand unsent events to the queue, then mark them sent.

Enqueue first, mark second: a crash between the two re-sends the event,
and ``handle_event`` dedupes on its id. With Redis unreachable the events
stay unsent (the error is counted on the row) until a later relay — the
request that wrote them has long succeeded.
"""

from __future__ import annotations

import logging
import uuid

from rems_service.runtime import Runtime

from .dispatch import Dispatcher, dispatcher_for
from .handlers import handle_event

log = logging.getLogger(__name__)

#: Events per relay run.
BATCH = 200
#: After a failed relay from a request, requests skip relaying this long (a down Redis
#: must not add a connection timeout to every request; cron keeps trying).
#: Kept in ``Runtime.relay_state``.
PAUSE_SECONDS = 15.0


def relay_outbox(runtime: Runtime, limit: int = BATCH) -> int:
    """Relay up to ``limit`` unsent events, oldest first; return how many were handed on."""
    dispatcher = dispatcher_for(runtime)
    if dispatcher.inline:
        return _relay_inline(runtime, dispatcher, limit)
    sent = 0
    with runtime.uow() as uow:
        rows = uow.outbox.lock_unsent(limit)
        sent_at = uow.outbox.database_now() if rows else None
        for row in rows:
            try:
                dispatcher.enqueue(handle_event, str(row.id), job_id=f"event-{row.id}")
            except Exception as exc:
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning(
                    "outbox relay: queue unavailable", extra={"error": type(exc).__name__, "pending": len(rows) - sent}
                )
                break
            row.sent_at = sent_at
            sent += 1
        uow.commit()
    if sent:  # an idle relay (every second under cron) logs nothing
        log.info("outbox relay: events handed to the queue", extra={"events": sent})
    return sent


def _relay_inline(runtime: Runtime, dispatcher: Dispatcher, limit: int) -> int:
    """No queue: run each handler here, then mark its event sent (each in its own
    transaction: no row lock is held while the handler writes, which SQLite's single
    writer would not allow)."""
    with runtime.uow() as uow:
        ids = uow.outbox.unsent_ids(limit)
    for event_id in ids:
        dispatcher.enqueue(handle_event, str(event_id), job_id=f"event-{event_id}")
        _mark_sent(runtime, event_id)
    if ids:
        log.info("outbox relay: events handled in-process", extra={"events": len(ids)})
    return len(ids)


def _mark_sent(runtime: Runtime, event_id: uuid.UUID) -> None:
    with runtime.uow() as uow:
        if uow.outbox.mark_sent(event_id):
            uow.commit()


def relay_after_request(runtime: Runtime) -> None:
    """Best effort after a write request; never fails the request."""
    if runtime.relay_state.paused():
        return
    try:
        relay_outbox(runtime)
    except Exception as exc:
        runtime.relay_state.pause(PAUSE_SECONDS)
        log.warning("outbox relay after request failed", extra={"error": type(exc).__name__})
