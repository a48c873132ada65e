"""audit entry MACs: a keyed MAC on every entry and checkpoint from now on

Adds ``audit_entries.mac`` and ``audit_checkpoints.mac`` (HMAC-SHA256 of the entry's hash under a key the
database never holds, see ``rems_service.db.audit_mac``). Entries written
before this revision keep a null MAC: their rows refuse UPDATE, and a MAC
computed now over whatever they hold would vouch for content nobody can vouch
for any more. Verification reports them as unsigned, and the first anchor
published after the upgrade (signed, kept outside the database) covers them
from then on (README, "Audit chain").

The table's ownership and the service role's grants are set by
``rems db upgrade`` after the migrations (``migrate.secure_roles``), on every
run, so tables added later get them too.

Revision ID: 0011
Revises: 0006
Create Date: 2026-11-27 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: no row is rewritten (the append-only triggers
    # are not involved) on either backend.
    op.add_column("audit_entries", sa.Column("mac", sa.String(length=64), nullable=True))
    # Checkpoints too: incremental verification trusts only one whose MAC checks (one written
    # into the table by anyone else would let it skip rewritten entries).
    op.add_column("audit_checkpoints", sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Plain SQL on both backends (SQLite 3.35+ drops a column in place; alembic would want a
    # batch copy of the table, which its append-only triggers would not survive).
    op.execute("ALTER TABLE audit_checkpoints DROP COLUMN mac")
    op.execute("ALTER TABLE audit_entries DROP COLUMN mac")
