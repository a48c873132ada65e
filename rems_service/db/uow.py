"""The unit of work: one database transaction, committed explicitly.

Services are the only code that opens one. Leaving the ``with`` block
without ``commit()`` — including by an exception — rolls everything back,
so a half-made decision or state change never persists. Objects read by a
unit of work that ended without error stay readable after it closes.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .audit_log_store import AuditLogStore
from .directory import Directory
from .outbox import OutboxStore
from .repository import Duplicate, Repository
from .webhook_store import WebhookStore


class UnitOfWork:
    """Wraps a session; ``commit()`` is the only way anything is kept."""

    session: Session
    #: Reads, row locks and the writes that go with a change, on this unit's session.
    repo: Repository
    #: The auditor's reads of the audit log.
    audit_log: AuditLogStore
    #: Webhook subscriptions, deliveries and attempts.
    webhooks: WebhookStore
    #: The outbox's rows and the handled-event record.
    outbox: OutboxStore
    #: Program staff's lists of participants and users, and their histories.
    directory: Directory

    def __init__(self, session_factory: Callable[[], Session]):
        self._session_factory = session_factory
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        self.repo = Repository(self.session)
        self.audit_log = AuditLogStore(self.session)
        self.webhooks = WebhookStore(self.session)
        self.outbox = OutboxStore(self.session)
        self.directory = Directory(self.session)
        self._committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                if exc_type is None:
                    # A read-only unit of work: keep what was loaded usable after
                    # the session ends (a rollback would expire it).
                    self.session.expunge_all()
                self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        """Keep everything; ``Duplicate`` (and nothing kept) if a unique constraint refuses a row."""
        self.repo.write_pending()  # a decision's one write statement (PostgreSQL), if not made yet
        try:
            self.session.commit()
        except IntegrityError as exc:
            raise Duplicate() from exc
        self._committed = True

    def rollback(self) -> None:
        self.session.rollback()
