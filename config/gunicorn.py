"""gunicorn settings for the web process (``gunicorn -c config/gunicorn.py``).

Binds ``127.0.0.1:$PORT`` (8000) unless ``REMS_BIND`` says otherwise (``0.0.0.0:8000``
to listen on every interface, behind a proxy or in a container). gunicorn's own lines
go through the service's log handler (one format on the console), and the master
names the environment, the database and the queue once at start-up.
"""

import logging
import os

from flask import Flask
from prometheus_client import multiprocess

from config.settings import banner, load_settings
from rems_service.logs import dict_config
from rems_service.runtime import APP_NAME

_settings = load_settings()

bind = os.environ.get("REMS_BIND") or f"127.0.0.1:{os.environ.get('PORT') or '8000'}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("REMS_THREADS", "1"))
wsgi_app = "rems_service.wsgi:app"
timeout = 30
# gunicorn's largest request line (its default is 4094): a list's query string (filters, a
# cursor) percent-encoded stays well inside it; longer lines get gunicorn's own 414.
limit_request_line = 8190
graceful_timeout = 20
# The app's own request log (logger "rems.access") replaces gunicorn's access log.
accesslog = None
errorlog = "-"
logconfig_dict = dict_config(
    _settings["LOG_LEVEL"], _settings["LOG_FORMAT"], {"gunicorn.error": "INFO", "gunicorn.access": "WARNING"}
)
# No gunicorn control socket: nothing here uses it, and its default path is shared by
# every gunicorn of the user.
control_socket_disable = True
# Each worker builds its own engine after the fork: no pooled connection
# crosses a fork, and a bad program file stops each worker at start-up.
preload_app = False


def on_starting(server: object) -> None:
    """Once, in the master: which environment, database and queue this service uses."""
    logging.getLogger("rems.startup").info(banner(_settings, Flask(APP_NAME).instance_path, f"web on {bind}"))
    host, _, port = bind.rpartition(":")
    where = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
    logging.getLogger("rems.startup").info(
        f"portal: sign in at http://{where}:{port}/login (API under http://{where}:{port}/api/v1)"
    )


def child_exit(server: object, worker: object) -> None:
    """With ``PROMETHEUS_MULTIPROC_DIR`` (several workers' metrics added up), drop an exited
    worker's live gauges (prometheus_client's multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(getattr(worker, "pid", 0))
