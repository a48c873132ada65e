"""Patients, their pregnancy tests and surveys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel types)
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rems_patient_id", sa.String(length=16), nullable=False),
        sa.Column("prescriber_id", sa.Uuid(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("risk_category", sa.String(length=32), nullable=False),
        sa.Column("menstrual_cycle", sa.String(length=32), nullable=True),
        sa.Column("fnrp_reason", sa.String(length=32), nullable=True),
        sa.Column("guardian_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("therapy_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prescriber_id"], ["prescribers.id"], name=op.f("fk_patients_prescriber_id_prescribers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("rems_patient_id", name=op.f("uq_patients_rems_patient_id")),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patients_prescriber_id"), ["prescriber_id"], unique=False)

    op.create_table(
        "patient_surveys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("noncompliance", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_patient_surveys_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_surveys")),
    )
    with op.batch_alter_table("patient_surveys", schema=None) as batch_op:
        batch_op.create_index("ix_patient_surveys_patient_completed", ["patient_id", "completed_at"], unique=False)

    op.create_table(
        "pregnancy_tests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("sensitivity_miu_ml", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_pregnancy_tests_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pregnancy_tests")),
    )
    with op.batch_alter_table("pregnancy_tests", schema=None) as batch_op:
        batch_op.create_index("ix_pregnancy_tests_patient_collected", ["patient_id", "collected_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pregnancy_tests", schema=None) as batch_op:
        batch_op.drop_index("ix_pregnancy_tests_patient_collected")

    op.drop_table("pregnancy_tests")
    with op.batch_alter_table("patient_surveys", schema=None) as batch_op:
        batch_op.drop_index("ix_patient_surveys_patient_completed")

    op.drop_table("patient_surveys")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patients_prescriber_id"))

    op.drop_table("patients")
