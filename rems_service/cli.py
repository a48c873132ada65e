"""The ``rems`` command: a Flask CLI group for the app (API.md, Command line)."""

from __future__ import annotations

import functools
import json
import os
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import click
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from config.settings import safe_url
from rems_service import create_app
from rems_service.db import migrate
from rems_service.db.engine import build_engine, normalize_url
from rems_service.jobs import tasks
from rems_service.runtime import get_runtime
from rems_service.services import audit_log, decisions, pharmacies, prescribers, reminders, users
from rems_service.services.errors import Invalid, ServiceError
from workflows.actors import SYSTEM, UserRole
from workflows.participants import PHARMACY_ATTESTATIONS, PRESCRIBER_ATTESTATIONS


def _now() -> datetime:
    return datetime.now(UTC)


def _fail(exc: ServiceError) -> None:
    click.echo(json.dumps({"error": exc.message, "errors": exc.field_errors}), err=True)
    sys.exit(2)


F = TypeVar("F", bound=Callable[..., Any])


def _needs_database(command: F) -> F:
    """An unreachable or unmigrated database is one line naming it and what to run, exit 1
    (not a driver traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (OperationalError, ProgrammingError) as exc:
            detail = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
            url = safe_url(get_runtime().settings["DATABASE_URL"])
            click.echo(
                json.dumps({"error": f"the database at {url} cannot answer ({detail}); run `rems db upgrade` first"}),
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False)
def main() -> None:
    """Lenalidomide REMS service. DATABASE_URL, REDIS_URL and REMS_ENV configure it."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create the database when it is missing (PostgreSQL: when the role may), then create
    or migrate the schema to REVISION; prints {"database", "created", "revision", "roles"}.

    PostgreSQL with REMS_DATABASE_OWNER_URL (or REMS_DATABASE_SERVICE_ROLE): the migrations
    run as the owner, who then owns every table, and the service's role (the user of
    DATABASE_URL, or REMS_DATABASE_SERVICE_ROLE) is granted only what it needs: on
    audit_entries, SELECT and INSERT (README, "Audit chain")."""
    runtime = get_runtime()
    url = runtime.settings["DATABASE_URL"]
    owner_url = runtime.settings.get("DATABASE_OWNER_URL") or url
    service_role = runtime.settings.get("DATABASE_SERVICE_ROLE") or make_url(normalize_url(url)).username
    engine = runtime.engine if owner_url == url else build_engine(owner_url)
    try:
        created = migrate.ensure_database(owner_url)
        migrate.upgrade(engine, revision)
        revision_now = migrate.current_revision(engine)
        roles = migrate.secure_roles(engine, service_role)
    except (migrate.DatabaseUnavailable, migrate.RoleSetupError) as exc:
        click.echo(json.dumps({"error": str(exc)}), err=True)
        sys.exit(1)
    except OperationalError as exc:
        detail = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        click.echo(json.dumps({"error": f"cannot migrate the database at {safe_url(owner_url)}: {detail}"}), err=True)
        sys.exit(1)
    finally:
        if engine is not runtime.engine:
            engine.dispose()
    click.echo(json.dumps({"database": safe_url(url), "created": created, "revision": revision_now, "roles": roles}))


@main.group("users")
def users_group() -> None:
    """API users."""


@users_group.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in UserRole]))
@click.option("--prescriber-id", type=click.UUID)
@click.option("--pharmacy-id", type=click.UUID)
@click.option("--trained", is_flag=True, help="Pharmacists: REMS training completed now.")
@click.option("--email", help="Portal sign-in email (unique, case-insensitive); needs --password-stdin.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help=f"Read the portal password (at least {users.MIN_PASSWORD_LENGTH} characters) from the first line of stdin.",
)
@with_appcontext
@_needs_database
def users_create(
    name: str,
    role: str,
    prescriber_id: UUID | None,
    pharmacy_id: UUID | None,
    trained: bool,
    email: str | None,
    password_stdin: bool,
) -> None:
    """Create a user and print {"id", "token"} (the token is never shown again).

    With --email and --password-stdin the user can also sign in to the portal:
    `printf '%s\\n' "$PASSWORD" | rems users create ... --email a@b.org --password-stdin`."""
    now = _now()
    password = None
    if password_stdin:
        password = (sys.stdin.readline() or "").rstrip("\r\n")
        if not password:
            _fail(Invalid("No password on stdin.", {"password": ["Give it on the first line of stdin."]}))
    elif email is not None:
        _fail(Invalid("--email needs --password-stdin.", {"password": ["Required with --email."]}))
    try:
        user, token = users.create_user(
            get_runtime().uow(),
            SYSTEM,
            now,
            name=name,
            role=role,
            prescriber_id=prescriber_id,
            pharmacy_id=pharmacy_id,
            training_completed_at=now if trained else None,
            email=email,
            password=password,
        )
    except ServiceError as exc:
        _fail(exc)
    out = {"id": str(user.id), "token": token}
    if user.email:
        out["email"] = user.email
    click.echo(json.dumps(out))


#: A valid NPI (check digit per the CMS algorithm) and NCPDP id for the demo program.
DEMO_NPI = "1234567893"
DEMO_NCPDP = "0000001"


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) when the database already has users.")
@click.option(
    "--output",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="text: a framed block for a person at a console (`make run`).",
)
@with_appcontext
@_needs_database
def demo_seed(if_empty: bool, output: str) -> None:
    """Fill an empty database with a demo program and print its users' tokens."""
    runtime = get_runtime()
    if users.any_exist(runtime.uow()):
        message = (
            "the database already has users; demo tokens were printed when it was seeded "
            "(mint more with `rems users create`)"
        )
        if if_empty:
            click.echo(
                _framed([f"Demo data: {message}."])
                if output == "text"
                else json.dumps({"seeded": False, "message": message})
            )
            return
        click.echo(json.dumps({"error": message}), err=True)
        sys.exit(1)
    now = _now()
    prescriber = prescribers.register(
        runtime.uow(),
        SYSTEM,
        now,
        npi=DEMO_NPI,
        first_name="Demo",
        last_name="Prescriber",
        email="prescriber@example.org",
    )
    prescribers.certify(runtime.uow(), SYSTEM, now, prescriber.id, dict.fromkeys(PRESCRIBER_ATTESTATIONS, True))
    pharmacy = pharmacies.register(
        runtime.uow(),
        SYSTEM,
        now,
        ncpdp_id=DEMO_NCPDP,
        name="Demo Specialty Pharmacy",
        representative_name="Demo Representative",
        representative_email="rep@example.org",
    )
    pharmacies.certify(
        runtime.uow(), SYSTEM, now, runtime.program, pharmacy.id, dict.fromkeys(PHARMACY_ATTESTATIONS, True)
    )
    out: dict[str, object] = {
        "seeded": True,
        "prescriber_id": str(prescriber.id),
        "pharmacy_id": str(pharmacy.id),
        "users": {},
    }
    for label, kwargs in (
        ("admin", {"role": "admin"}),
        ("prescriber", {"role": "prescriber", "prescriber_id": prescriber.id}),
        ("pharmacist", {"role": "pharmacist", "pharmacy_id": pharmacy.id, "training_completed_at": now}),
        ("auditor", {"role": "auditor"}),
    ):
        email, password = f"{label}@demo.example.org", secrets.token_urlsafe(12)
        user, token = users.create_user(
            runtime.uow(), SYSTEM, now, name=f"Demo {label}", email=email, password=password, **kwargs
        )
        out["users"][label] = {  # type: ignore[index]
            "id": str(user.id),
            "token": token,
            "email": email,
            "password": password,
        }
    click.echo(_seeded_text(out, runtime.settings["DATABASE_URL"]) if output == "text" else json.dumps(out, indent=2))


def _framed(lines: list[str]) -> str:
    rule = "=" * 78
    return "\n".join(["", rule, *lines, rule, ""])


def _seeded_text(out: dict[str, Any], url: str) -> str:
    seeded_users: dict[str, dict[str, str]] = out["users"]
    return _framed(
        [
            f"Demo program seeded in {safe_url(url)}.",
            "Its users' credentials, shown this once: keep them.",
            "",
            f"Portal: sign in at http://127.0.0.1:{os.environ.get('PORT') or 8000}/login with an email and password:",
            "",
            *(f"  {user['email']:<30} password {user['password']}" for user in seeded_users.values()),
            "",
            "API: bearer tokens (Authorization: Bearer <token>):",
            "",
            *(f"  {label:<11} {user['token']}" for label, user in seeded_users.items()),
            "",
            f"  prescriber_id {out['prescriber_id']}",
            f"  pharmacy_id   {out['pharmacy_id']}",
            "",
            "Try: curl -H 'Authorization: Bearer <admin token>' "
            f"http://127.0.0.1:{os.environ.get('PORT') or 8000}/api/v1/prescribers/<prescriber_id>",
        ]
    )


@main.group("audit")
def audit_group() -> None:
    """The audit log."""


@audit_group.command("verify")
@click.option(
    "--incremental", is_flag=True, help="Start after the newest stored checkpoint instead of the first entry."
)
@click.option(
    "--anchor",
    "anchor_text",
    metavar="SEQ:HASH",
    help="An anchor from `rems audit anchor`: also prove nothing up to it was truncated or rewritten.",
)
@click.option(
    "--anchors",
    "anchors_dir",
    type=click.Path(file_okay=False, path_type=str),
    help="A directory of signed anchors (`rems audit anchor --publish`, `rq cron`): check every one.",
)
@with_appcontext
@_needs_database
def audit_verify(incremental: bool, anchor_text: str | None, anchors_dir: str | None) -> None:
    """Check the chain (every entry's hash and keyed MAC); exit 0 when intact, 1 otherwise
    (JSON summary printed). With --anchors, every published anchor's signature is checked
    and the chain must still hold the entry each names with the hash it names.

    A valid run stores a checkpoint for later incremental runs."""
    try:
        anchor = audit_log.parse_anchor(anchor_text) if anchor_text else None
    except ServiceError as exc:
        _fail(exc)
    if anchors_dir is not None and not os.path.isdir(anchors_dir):
        click.echo(json.dumps({"error": f"--anchors {anchors_dir!r} is not a directory"}), err=True)
        sys.exit(2)
    published = audit_log.AnchorSink(anchors_dir).read() if anchors_dir is not None else None
    result = audit_log.verify(
        get_runtime().uow(), None, _now(), incremental=incremental, anchor=anchor, anchors=published
    )
    report = result.as_dict()
    click.echo(json.dumps(report))
    unsigned = report["unsigned"]
    if unsigned["count"] and unsigned["anchored_by_seq"] is None:
        click.echo(
            f"warning: entries up to {unsigned['through_seq']} ({unsigned['count']}) were written before MACs "
            "existed and no checked anchor covers them; publish one (`rems audit anchor --publish`) and verify "
            "with --anchors (README, Audit chain)",
            err=True,
        )
    sys.exit(0 if result.check.valid else 1)


@audit_group.command("anchor")
@click.option(
    "--publish",
    is_flag=True,
    help="Verify the entries since the last anchor, sign the head and write it to the anchor directory.",
)
@click.option(
    "--dir",
    "anchors_dir",
    type=click.Path(file_okay=False, path_type=str),
    help="With --publish: the directory (default REMS_AUDIT_ANCHOR_DIR, else instance/audit-anchors).",
)
@with_appcontext
@_needs_database
def audit_anchor(publish: bool, anchors_dir: str | None) -> None:
    """Print the chain head as {"seq", "hash", "anchor": "SEQ:HASH"}; keep it outside the database.

    With --publish (what `rq cron` does every REMS_AUDIT_ANCHOR_INTERVAL_SECONDS): a signed
    anchor {"seq", "hash", "anchored_at", "key_id", "signature"} is written to the anchor
    directory and sent as an `audit.anchored` event; exit 1 when the chain does not verify."""
    runtime = get_runtime()
    if not publish:
        click.echo(json.dumps(audit_log.anchor(runtime.uow())))
        return
    assert runtime.audit_key is not None
    sink = audit_log.AnchorSink(anchors_dir or runtime.anchor_dir)
    result = audit_log.publish_anchor(runtime.uow, runtime.audit_key, sink, _now())
    click.echo(json.dumps(result))
    sys.exit(1 if result.get("reason") == "chain invalid" else 0)


@audit_group.command("replay")
@click.argument("seq", type=int, required=False)
@click.option(
    "--all", "replay_all", is_flag=True, help="Replay every recorded decision (one JSON line each, then a summary)."
)
@with_appcontext
@_needs_database
def audit_replay(seq: int | None, replay_all: bool) -> None:
    """Decide again the decision recorded at audit entry SEQ, from its stored snapshot
    and program version; exit 0 when the outcome, reasons and validity match, 1 otherwise."""
    if (seq is None) == (not replay_all):
        raise click.UsageError("give either SEQ or --all")
    runtime = get_runtime()
    if seq is not None:
        try:
            result = decisions.replay(runtime.uow(), runtime.program, seq)
        except ServiceError as exc:
            _fail(exc)
        click.echo(json.dumps(result.as_dict()))
        sys.exit(0 if result.matches else 1)
    replayed = mismatched = 0
    for result in decisions.replay_all(runtime.uow(), runtime.program):
        replayed += 1
        if not result.matches:
            mismatched += 1
            click.echo(json.dumps(result.as_dict()))
    click.echo(json.dumps({"replayed": replayed, "mismatched": mismatched}))
    sys.exit(0 if mismatched == 0 else 1)


@main.group("jobs")
def jobs_group() -> None:
    """Background work."""


@jobs_group.command("refresh-reminders")
@with_appcontext
@_needs_database
def jobs_refresh_reminders() -> None:
    """Recompute every patient's next test and survey due dates (the reminders' mirrors), e.g.
    after an upgrade that changed which surveys count (R-SURV-3). Prints how many patients."""
    runtime = get_runtime()
    count = reminders.refresh_all(runtime.uow, runtime.program, datetime.now(UTC))
    click.echo(json.dumps({"patients_refreshed": count}))


@jobs_group.command("sweep")
@with_appcontext
@_needs_database
def jobs_sweep() -> None:
    """Run every periodic sweep once (expiries, reminders, renewals, webhook retries, outbox relay)."""
    click.echo(json.dumps(tasks.run_sweeps(get_runtime()), sort_keys=True))
