"""user credentials: disabled users, token expiry and rotation

``users.disabled_at`` (null: active) stops every credential of a user at once
(bearer tokens and portal sessions, through the repository's reads of the caller);
``users.token_expires_at`` (null: no expiry) bounds a token's life;
``users.token_rotated_at`` records when the current token replaced the last one
(the old hash is overwritten, so the old token is refused from the next request).

Revision ID: 0010
Revises: 0006
Create Date: 2026-11-27 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel types)
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("token_rotated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("token_rotated_at")
        batch_op.drop_column("token_expires_at")
        batch_op.drop_column("disabled_at")
