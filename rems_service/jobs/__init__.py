"""Background work: the outbox relay, RQ jobs and the periodic sweeps.

Layered one way — ``dispatch`` < ``handlers`` < ``relay`` < ``tasks`` (and
``worker`` on top): a module imports only modules below it. With ``REDIS_URL``
set, jobs go to the RQ queue (JSON serializer, ids only) and ``rq worker
--with-scheduler`` runs them; ``rq cron config/cron.py`` runs the sweeps and the
relay. Without it, the relay runs each event's handler in-process after the
request, webhooks are posted inline, and scheduled work (retries, expiries,
reminders) is picked up by the sweeps (`rems jobs sweep`). Obligations live in
the database either way. The relay after a request runs on a background thread
(``dispatch.Background``), never in the request's path: the response does not wait
for it, nor for any webhook receiver.
"""

from __future__ import annotations

from flask import Flask, Response, request

from rems_service.runtime import get_runtime

from .dispatch import background_for
from .relay import relay_after_request

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """After each successful write request, relay the outbox (best effort, on a background
    thread) when ``RELAY_AFTER_REQUEST`` says so — by default only without a queue."""
    enabled = app.config.get("RELAY_AFTER_REQUEST")
    if enabled is None:
        enabled = not app.config.get("REDIS_URL")
    if not enabled:
        return

    @app.after_request
    def _relay(response: Response) -> Response:
        if request.method in WRITE_METHODS and response.status_code < 500:
            runtime = get_runtime()
            background_for(runtime).relay(lambda: relay_after_request(runtime))
        return response
