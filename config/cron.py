"""``rq cron config/cron.py``: the periodic work (see rems_service.jobs).

The sweeps mirror expiries, remind prescribers and pharmacies, retry due
webhook deliveries and relay the outbox; the relay also runs on its own,
more often, so events reach the queue within seconds. Both are idempotent,
so a second cron process or a missed run does no harm.
"""

from rq import cron

from rems_service.jobs import tasks

QUEUE = "rems"

cron.register(tasks.run_sweeps, QUEUE, interval=60, job_timeout=600)
cron.register(tasks.relay, QUEUE, interval=5, job_timeout=120)
