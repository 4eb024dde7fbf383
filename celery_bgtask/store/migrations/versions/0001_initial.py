"""Initial schema: task records, concurrency slots, meta, schedules.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JsonText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "bgtask_tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("date_created", sa.BigInteger, nullable=False),
        sa.Column("date_modified", sa.BigInteger, nullable=False),
        sa.Column("date_completed", sa.BigInteger),
        sa.Column("date_cancelled", sa.BigInteger),
        sa.Column("date_retain_until", sa.BigInteger),
        sa.Column("retain_for", sa.BigInteger, nullable=False),
        sa.Column("retry_interval", sa.Integer),
        sa.Column("retries_remaining", sa.Integer),
        sa.Column("payload", JsonText),
        sa.Column("result", JsonText),
        sa.Column("error", JsonText),
        sa.Column("next_run_at", sa.BigInteger),
        sa.Column("enqueued_at", sa.BigInteger),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("worker", sa.String(255)),
        sa.Column("iterations", sa.Integer, nullable=False, server_default="0"),
        sa.Column("abort_requested", sa.Boolean, nullable=False, server_default="0"),
    )
    op.create_index("ix_bgtask_tasks_type_status_created", "bgtask_tasks", ["type", "status", "date_created", "id"])
    op.create_index("ix_bgtask_tasks_status_created", "bgtask_tasks", ["status", "date_created", "id"])
    op.create_index("ix_bgtask_tasks_created", "bgtask_tasks", ["date_created", "id"])
    op.create_index("ix_bgtask_tasks_modified", "bgtask_tasks", ["date_modified", "id"])
    op.create_index("ix_bgtask_tasks_due", "bgtask_tasks", ["status", "next_run_at"])
    op.create_index("ix_bgtask_tasks_lease", "bgtask_tasks", ["lease_until"])
    op.create_index("ix_bgtask_tasks_retain", "bgtask_tasks", ["date_retain_until"])

    op.create_table(
        "bgtask_slots",
        sa.Column("type", sa.String(200), primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(32)),
        sa.Column("lease_until", sa.BigInteger),
    )
    op.create_table(
        "bgtask_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "bgtask_schedules",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("callback", sa.Text, nullable=False),
        sa.Column("date_created", sa.BigInteger, nullable=False),
        sa.Column("date_modified", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "bgtask_schedule_times",
        sa.Column(
            "schedule_id",
            sa.String(200),
            sa.ForeignKey("bgtask_schedules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("revision", sa.String(32), nullable=False),
        sa.Column("next_trigger_time", sa.BigInteger),
        sa.Column("interval_days", sa.Integer),
        sa.Column("interval_hours", sa.Integer),
        sa.Column("interval_minutes", sa.Integer),
    )
    op.create_index("ix_bgtask_schedule_times_next", "bgtask_schedule_times", ["next_trigger_time"])


def downgrade() -> None:
    op.drop_table("bgtask_schedule_times")
    op.drop_table("bgtask_schedules")
    op.drop_table("bgtask_meta")
    op.drop_table("bgtask_slots")
    op.drop_table("bgtask_tasks")
