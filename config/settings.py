"""Settings classes, chosen by ``REMS_ENV`` and overridden by the environment.

``REMS_ENV``: ``development`` (default), ``sandbox``, ``test`` or
``production``. ``DATABASE_URL`` (default: a SQLite file in the Flask
instance folder, one per environment), ``REDIS_URL`` (unset: jobs run inline
in-process), ``REMS_LOG_LEVEL``, ``REMS_LOG_FORMAT`` (``text`` or ``json``),
``REMS_PROGRAM_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import make_url

from config.programs import PROGRAMS_DIR

#: The formats of the log lines on stderr (``rems_service.logs``).
LOG_FORMATS = ("text", "json")


class Config:
    """Defaults shared by every environment."""

    ENV_NAME = "development"
    #: Whether ``X-Rems-Now`` may set the evaluation time (sandbox and test only).
    ALLOW_CLOCK_HEADER = False
    #: None means the SQLite file ``SQLITE_FILE`` in the instance folder.
    DATABASE_URL: str | None = None
    #: The embedded database's file name: each environment has its own, so a sandbox
    #: never writes into the development database.
    SQLITE_FILE = "rems.sqlite3"
    REDIS_URL: str | None = None
    PROGRAM_DIR = str(PROGRAMS_DIR)
    LOG_LEVEL = "INFO"
    #: ``text`` (one human-readable line per record) or ``json`` (one object per line).
    LOG_FORMAT = "text"

    # flask-smorest / OpenAPI
    API_TITLE = "Lenalidomide REMS"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    # /api/v1/docs is served by ``api.openapi.docs_blp`` from local assets (flask-smorest's
    # own Swagger UI page loads them from a CDN and starts them with an inline script).
    OPENAPI_SWAGGER_UI_PATH = None
    JSON_SORT_KEYS = False

    # The standard fronts (INTEROP.md)
    #: The FHIR identifier system of the REMS patient ID (``REMS_PATIENT_ID_SYSTEM``).
    REMS_PATIENT_ID_SYSTEM = "urn:lenalidomide-rems:patient-id"
    #: The portal's base URL for CDS Hooks card links (``REMS_PORTAL_URL``); unset: the request's host.
    PORTAL_URL: str | None = None

    # Background work (issue "events and jobs")
    #: RQ queue the web process, the worker and cron share.
    QUEUE_NAME = "rems"
    #: Relay the outbox after each write request. None (the default): only when jobs
    #: run inline (no REDIS_URL), where nothing else would; with a queue, ``rq cron``
    #: relays every second and requests do not pay for it.
    RELAY_AFTER_REQUEST: bool | None = None
    #: Webhook delivery: per-attempt timeout, lease of a claimed attempt, retry policy.
    WEBHOOK_TIMEOUT_SECONDS = 5.0
    WEBHOOK_LEASE_SECONDS = 60
    WEBHOOK_BACKOFF_SECONDS = 30
    WEBHOOK_BACKOFF_CAP_SECONDS = 3600
    WEBHOOK_MAX_ATTEMPTS = 8
    #: Webhook hardening (issue 18): connect and total deadlines of one attempt
    #: (``WEBHOOK_TIMEOUT_SECONDS`` is the per-read one), the most response bytes read,
    #: live subscriptions per prescriber, pharmacy or admin user, how long a rotated-out
    #: secret still signs, and the threads posting deliveries without a queue.
    #: (An attempt lasts at most resolve + connect + total: keep WEBHOOK_LEASE_SECONDS above it,
    #: or a second deliverer may take over an attempt still running.)
    WEBHOOK_CONNECT_TIMEOUT_SECONDS = 3.0
    WEBHOOK_RESOLVE_TIMEOUT_SECONDS = 2.0
    WEBHOOK_TOTAL_TIMEOUT_SECONDS = 10.0
    WEBHOOK_MAX_RESPONSE_BYTES = 65536
    WEBHOOK_MAX_SUBSCRIPTIONS = 20
    WEBHOOK_SECRET_GRACE_SECONDS = 86400
    WEBHOOK_DELIVERY_THREADS = 4
    #: Targets must be https (production); loopback targets are allowed only where this
    #: is explicitly on (development and sandbox receivers on the same machine).
    WEBHOOK_REQUIRE_HTTPS = True
    WEBHOOK_ALLOW_LOOPBACK = False
    #: The CA certificates https targets are verified against (a PEM file); None: certifi's.
    WEBHOOK_CA_BUNDLE: str | None = None
    #: ``/metrics`` answers admins only unless this is on (a scraper on a private network).
    METRICS_PUBLIC = False

    # Rate limits (``rems_service.ratelimit``; Flask-Limiter's notation, e.g. "20 per minute").
    RATE_LIMITS_ENABLED = True
    #: Failed authentications (API 401s, portal sign-ins) per client address.
    RATE_LIMIT_FAILED_AUTH = "20 per minute"
    #: Failed portal sign-ins per email.
    RATE_LIMIT_FAILED_SIGN_IN = "10 per 15 minutes"
    #: POST /authorizations and POST /dispenses per bearer token.
    RATE_LIMIT_DECISIONS = "120 per minute"

    # The audit chain's protection against its own database user (README "Audit chain")
    #: The role that owns the tables and runs the migrations: ``rems db upgrade`` connects with
    #: this URL when set (else with ``DATABASE_URL``, one role for everything).
    DATABASE_OWNER_URL: str | None = None
    #: The role the service connects as; ``rems db upgrade`` grants it only what it needs
    #: (``audit_entries``: SELECT and INSERT). None: the user ``DATABASE_URL`` names.
    DATABASE_SERVICE_ROLE: str | None = None
    #: The key of the audit entries' MACs and the anchors' signatures (hex, 32+ bytes), or a file
    #: holding it; neither: ``audit-mac.key`` in the instance folder, generated on first run
    #: (not in production, which must name one).
    AUDIT_KEY: str | None = None
    AUDIT_KEY_FILE: str | None = None
    #: Where ``rq cron`` publishes signed anchors (None: ``audit-anchors/`` in the instance
    #: folder), and how often (seconds).
    AUDIT_ANCHOR_DIR: str | None = None
    AUDIT_ANCHOR_INTERVAL_SECONDS = 3600


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    WEBHOOK_REQUIRE_HTTPS = False
    WEBHOOK_ALLOW_LOOPBACK = True


class SandboxConfig(Config):
    ENV_NAME = "sandbox"
    ALLOW_CLOCK_HEADER = True
    SQLITE_FILE = "rems-sandbox.sqlite3"
    LOG_FORMAT = "json"
    WEBHOOK_REQUIRE_HTTPS = False
    WEBHOOK_ALLOW_LOOPBACK = True


class TestConfig(Config):
    ENV_NAME = "test"
    ALLOW_CLOCK_HEADER = True
    TESTING = True
    # Tests of background work turn it on; the others should not pay for it.
    RELAY_AFTER_REQUEST = False
    # Suites make many refused and decision requests from one address; the rate-limit
    # tests set their own limits.
    RATE_LIMIT_FAILED_AUTH = "100000 per minute"
    RATE_LIMIT_FAILED_SIGN_IN = "100000 per minute"
    RATE_LIMIT_DECISIONS = "100000 per minute"
    # http targets as in development, but loopback only where a test turns it on.
    WEBHOOK_REQUIRE_HTTPS = False


class ProductionConfig(Config):
    ENV_NAME = "production"
    LOG_FORMAT = "json"


CONFIGS: dict[str, type[Config]] = {
    c.ENV_NAME: c for c in (DevelopmentConfig, SandboxConfig, TestConfig, ProductionConfig)
}


class ConfigurationError(RuntimeError):
    """The environment does not describe a service that can start safely."""


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the settings for ``REMS_ENV`` with environment and explicit overrides applied."""
    environ = os.environ if environ is None else environ
    env_name = environ.get("REMS_ENV", "development").strip().lower()
    if env_name not in CONFIGS:
        raise ConfigurationError(f"REMS_ENV must be one of {sorted(CONFIGS)}, got {env_name!r}")
    cls = CONFIGS[env_name]
    settings = {key: getattr(cls, key) for key in dir(cls) if key.isupper()}
    for key, env_key in (
        ("DATABASE_URL", "DATABASE_URL"),
        ("REDIS_URL", "REDIS_URL"),
        ("LOG_LEVEL", "REMS_LOG_LEVEL"),
        ("LOG_FORMAT", "REMS_LOG_FORMAT"),
        ("PROGRAM_DIR", "REMS_PROGRAM_DIR"),
        ("REMS_PATIENT_ID_SYSTEM", "REMS_PATIENT_ID_SYSTEM"),
        ("PORTAL_URL", "REMS_PORTAL_URL"),
        ("RATE_LIMIT_FAILED_AUTH", "REMS_RATE_LIMIT_FAILED_AUTH"),
        ("RATE_LIMIT_FAILED_SIGN_IN", "REMS_RATE_LIMIT_FAILED_SIGN_IN"),
        ("RATE_LIMIT_DECISIONS", "REMS_RATE_LIMIT_DECISIONS"),
        ("DATABASE_OWNER_URL", "REMS_DATABASE_OWNER_URL"),
        ("DATABASE_SERVICE_ROLE", "REMS_DATABASE_SERVICE_ROLE"),
        ("AUDIT_KEY", "REMS_AUDIT_KEY"),
        ("AUDIT_KEY_FILE", "REMS_AUDIT_KEY_FILE"),
        ("AUDIT_ANCHOR_DIR", "REMS_AUDIT_ANCHOR_DIR"),
        ("WEBHOOK_CA_BUNDLE", "REMS_WEBHOOK_CA_BUNDLE"),
    ):
        if environ.get(env_key):
            settings[key] = environ[env_key]
    for key in (
        "WEBHOOK_TIMEOUT_SECONDS",
        "WEBHOOK_LEASE_SECONDS",
        "WEBHOOK_BACKOFF_SECONDS",
        "WEBHOOK_BACKOFF_CAP_SECONDS",
        "WEBHOOK_MAX_ATTEMPTS",
        "AUDIT_ANCHOR_INTERVAL_SECONDS",
        "WEBHOOK_CONNECT_TIMEOUT_SECONDS",
        "WEBHOOK_RESOLVE_TIMEOUT_SECONDS",
        "WEBHOOK_TOTAL_TIMEOUT_SECONDS",
        "WEBHOOK_MAX_RESPONSE_BYTES",
        "WEBHOOK_MAX_SUBSCRIPTIONS",
        "WEBHOOK_SECRET_GRACE_SECONDS",
        "WEBHOOK_DELIVERY_THREADS",
    ):
        if environ.get(f"REMS_{key}"):
            settings[key] = type(settings[key])(environ[f"REMS_{key}"])
    for key in ("WEBHOOK_REQUIRE_HTTPS", "WEBHOOK_ALLOW_LOOPBACK", "METRICS_PUBLIC"):
        if environ.get(f"REMS_{key}"):
            settings[key] = environ[f"REMS_{key}"].strip().lower() in ("1", "true", "yes", "on")
    settings.update(overrides or {})
    if settings["ENV_NAME"] == "production" and not settings.get("DATABASE_URL"):
        raise ConfigurationError("production needs DATABASE_URL: the embedded SQLite file is for development")
    if settings["ENV_NAME"] == "production" and settings.get("WEBHOOK_ALLOW_LOOPBACK"):
        raise ConfigurationError("production may not allow loopback webhook targets (REMS_WEBHOOK_ALLOW_LOOPBACK)")
    settings["LOG_FORMAT"] = str(settings["LOG_FORMAT"]).strip().lower()
    if settings["LOG_FORMAT"] not in LOG_FORMATS:
        raise ConfigurationError(f"REMS_LOG_FORMAT must be one of {list(LOG_FORMATS)}, got {settings['LOG_FORMAT']!r}")
    return settings


def database_url(settings: Mapping[str, Any], instance_path: str) -> str:
    """``DATABASE_URL``, or the environment's embedded SQLite file in ``instance_path``."""
    url = settings.get("DATABASE_URL")
    if url:
        return str(url)
    return f"sqlite:///{os.path.join(instance_path, settings.get('SQLITE_FILE', Config.SQLITE_FILE))}"


def safe_url(url: str) -> str:
    """A database or Redis URL fit for a log line: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def banner(settings: Mapping[str, Any], instance_path: str, process: str) -> str:
    """The start-up line of a process: its environment, database and queue."""
    queue = (
        f"queue {settings['QUEUE_NAME']!r} on {safe_redis_url(settings['REDIS_URL'])}"
        if settings.get("REDIS_URL")
        else "jobs inline (no REDIS_URL)"
    )
    return (
        f"{process}: environment {settings['ENV_NAME']}, "
        f"database {safe_url(database_url(settings, instance_path))}, {queue}"
    )


def safe_redis_url(url: str) -> str:
    """``redis://user:secret@host/0`` -> ``redis://user:***@host/0``."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.partition(':')[0]}:***@{host}"
