"""Background work: the outbox relay, RQ job entrypoints and the periodic sweeps.

With ``REDIS_URL`` set, jobs go to the RQ queue (JSON serializer, ids only)
and ``rq worker --with-scheduler`` runs them; ``rq cron config/cron.py``
runs the sweeps and the relay. Without it, the relay runs each event's
handler in-process after the request, webhooks are posted inline, and
scheduled work (retries, expiries, reminders) is picked up by the sweeps
(`rems jobs sweep`). Obligations live in the database either way.
"""


def init_app(app):  # type: ignore[no-untyped-def]
    """After each successful write request, relay the outbox (best effort) when
    ``RELAY_AFTER_REQUEST`` says so — by default only without a queue."""
    from flask import request

    from rems_service.runtime import get_runtime

    from .relay import relay_after_request

    enabled = app.config.get("RELAY_AFTER_REQUEST")
    if enabled is None:
        enabled = not app.config.get("REDIS_URL")

    @app.after_request
    def _relay(response):  # type: ignore[no-untyped-def]
        if enabled and request.method in ("POST", "PUT", "PATCH", "DELETE") and response.status_code < 500:
            relay_after_request(get_runtime())
        return response
