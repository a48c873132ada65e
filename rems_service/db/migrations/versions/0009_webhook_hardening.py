"""webhook hardening: coarse delivery outcomes, secret rotation

``webhook_attempts.outcome`` and ``webhook_deliveries.last_outcome`` hold the
coarse class a subscriber may see (delivered, refused, unreachable, timed_out);
the raw error stays in ``error``/``last_error`` for operators.
``webhook_subscriptions.previous_secret`` and ``previous_secret_expires_at``
keep a rotated-out secret signing ``X-Rems-Timestamped-Signature`` (a second
``v1=``) until it expires, and ``secret_rotated_at`` says when it was rotated.

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-27 10:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel types)
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_outcome", sa.String(length=16), nullable=True))
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("secret_rotated_at")
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("last_outcome")
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_column("outcome")
