"""treatment courses, their events and lab results (CLINICAL_RULES.md)

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-27 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel types)
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE_COURSE = "status != 'stopped'"


def upgrade() -> None:
    op.create_table(
        "treatment_courses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("prescriber_id", sa.Uuid(), nullable=False),
        sa.Column("regimen", sa.String(length=32), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("dose_mg", sa.Float(), nullable=False),
        sa.Column("dose_every_days", sa.Integer(), nullable=False),
        sa.Column("days_on", sa.Integer(), nullable=False),
        sa.Column("cycle_length_days", sa.Integer(), nullable=False),
        sa.Column("thromboprophylaxis", sa.String(length=200), nullable=True),
        sa.Column("on_dialysis", sa.Boolean(), nullable=False),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("status_reason_code", sa.String(length=32), nullable=True),
        sa.Column("holds", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_treatment_courses_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["prescriber_id"], ["prescribers.id"], name=op.f("fk_treatment_courses_prescriber_id_prescribers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treatment_courses")),
    )
    with op.batch_alter_table("treatment_courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_treatment_courses_prescriber_id"), ["prescriber_id"], unique=False)
        batch_op.create_index("ix_treatment_courses_patient_created", ["patient_id", "created_at"], unique=False)
        batch_op.create_index(
            "uq_treatment_courses_one_live_per_patient",
            ["patient_id"],
            unique=True,
            sqlite_where=sa.text(_LIVE_COURSE),
            postgresql_where=sa.text(_LIVE_COURSE),
        )
    op.create_table(
        "treatment_course_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("from_dose_mg", sa.Float(), nullable=True),
        sa.Column("to_dose_mg", sa.Float(), nullable=True),
        sa.Column("lab_result_ids", sa.JSON(), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["course_id"], ["treatment_courses.id"], name=op.f("fk_treatment_course_events_course_id_treatment_courses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treatment_course_events")),
        sa.UniqueConstraint("course_id", "seq", name="uq_treatment_course_events_course_seq"),
    )
    with op.batch_alter_table("treatment_course_events", schema=None) as batch_op:
        batch_op.create_index("ix_treatment_course_events_course_at", ["course_id", "at"], unique=False)
    op.create_table(
        "lab_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("loinc", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("canonical_value", sa.Float(), nullable=False),
        sa.Column("canonical_unit", sa.String(length=40), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference_low", sa.Float(), nullable=True),
        sa.Column("reference_high", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_lab_results_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_results")),
    )
    with op.batch_alter_table("lab_results", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lab_results_patient_loinc_collected", ["patient_id", "loinc", "collected_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lab_results", schema=None) as batch_op:
        batch_op.drop_index("ix_lab_results_patient_loinc_collected")
    op.drop_table("lab_results")
    with op.batch_alter_table("treatment_course_events", schema=None) as batch_op:
        batch_op.drop_index("ix_treatment_course_events_course_at")
    op.drop_table("treatment_course_events")
    with op.batch_alter_table("treatment_courses", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_treatment_courses_one_live_per_patient",
            sqlite_where=sa.text(_LIVE_COURSE),
            postgresql_where=sa.text(_LIVE_COURSE),
        )
        batch_op.drop_index("ix_treatment_courses_patient_created")
        batch_op.drop_index(batch_op.f("ix_treatment_courses_prescriber_id"))
    op.drop_table("treatment_courses")
