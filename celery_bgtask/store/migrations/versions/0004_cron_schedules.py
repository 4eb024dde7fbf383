"""Cron and seconds trigger times, pause and resume, each time's last firing, and
``beat_schedule`` entries kept as schedules.

Every new column is nullable, so the rows of existing schedules stay as they were
(interval times, not paused, never fired here, not from beat_schedule).

Revision ID: 0004_cron_schedules
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004_cron_schedules"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "bgtask_schedule_times"
HEADS = "bgtask_schedules"


def _name(length: int) -> sa.types.TypeEngine[str]:
    """A name column as 0003 made them: binary collation on MySQL/MariaDB."""
    return sa.String(length).with_variant(mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"),
                                          "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("interval_seconds", sa.Integer()))
        batch.add_column(sa.Column("cron", sa.String(200)))
        batch.add_column(sa.Column("timezone", sa.String(64)))
        batch.add_column(sa.Column("paused", sa.Boolean()))
        batch.add_column(sa.Column("paused_trigger", sa.BigInteger()))
        batch.add_column(sa.Column("last_fired_at", sa.BigInteger()))
        batch.add_column(sa.Column("last_task_id", _name(32)))
    with op.batch_alter_table(HEADS) as batch:
        batch.add_column(sa.Column("call", sa.Text()))
        batch.add_column(sa.Column("origin", sa.String(16)))
        batch.add_column(sa.Column("entry_hash", sa.String(32)))
        batch.add_column(sa.Column("seen_at", sa.BigInteger()))


def downgrade() -> None:
    with op.batch_alter_table(HEADS) as batch:
        for column in ("seen_at", "entry_hash", "origin", "call"):
            batch.drop_column(column)
    with op.batch_alter_table(TABLE) as batch:
        for column in ("last_task_id", "last_fired_at", "paused_trigger", "paused", "timezone", "cron",
                       "interval_seconds"):
            batch.drop_column(column)
