"""decision channel: the front a decision came through, and its message's digest

Each decision row records the channel of INTEROP.md (``api``, ``portal``,
``ncpdp``, ``fhir``, ``cds-hooks``) and, for a standard message, the SHA-256
of the raw message (never the message itself). Decisions recorded before
this revision came through the JSON API: the column defaults to ``api``.
The audit entries keep the same two values in their details (their hashes
cover them); entries written before keep none and read as ``api``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel types)
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=16), server_default="api", nullable=False))
        batch_op.add_column(sa.Column("message_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("message_digest")
        batch_op.drop_column("channel")
