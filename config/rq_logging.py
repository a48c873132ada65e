"""Settings module of the RQ worker and ``rq cron`` (``rq worker -c config.rq_logging``).

RQ reads ``DICT_CONFIG`` from it before it starts: every line then goes through
the service's log handler (``REMS_LOG_FORMAT``, as the web process writes), and
RQ's own loggers are held at ``REMS_RQ_LOG_LEVEL`` (default ``WARNING``). At
``INFO`` RQ writes several lines for every job, so the relay that runs every
second would fill the console while nothing happens; our jobs log what they
did instead (``rems_service.jobs``: events handed on, sweeps that changed
something), and RQ's warnings and errors (a failed job) still show.
"""

from __future__ import annotations

import os

from config.settings import load_settings
from rems_service.logs import dict_config

_settings = load_settings()

#: The level of RQ's loggers (``rq.worker``, ``rq.job``, ``rq.scheduler``, ``rq.cron``).
RQ_LOG_LEVEL = os.environ.get("REMS_RQ_LOG_LEVEL", "WARNING").upper()

DICT_CONFIG = dict_config(_settings["LOG_LEVEL"], _settings["LOG_FORMAT"], {"rq": RQ_LOG_LEVEL})
