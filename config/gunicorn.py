"""gunicorn settings for the web process (``gunicorn -c config/gunicorn.py``)."""

import os

bind = os.environ.get("REMS_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("REMS_THREADS", "1"))
wsgi_app = "rems_service.wsgi:app"
timeout = 30
graceful_timeout = 20
# The app's own JSON request log replaces gunicorn's access log.
accesslog = None
errorlog = "-"
# Each worker builds its own engine after the fork: no pooled connection
# crosses a fork, and a bad program file stops each worker at start-up.
preload_app = False
