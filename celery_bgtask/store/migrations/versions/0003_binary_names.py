"""Names and ids in binary collation on MySQL/MariaDB (no change elsewhere).

The default collation (``utf8mb4_general_ci``) finds "abc", "ABC", "abc " and "äbc" equal,
so ``query(task_type="ABC")`` listed the tasks of "abc" and ``add_task("Daily", ...)``
replaced the schedule "daily". Binary collation compares them as the other databases do.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: (table, column, length, nullable) of every name or id column.
COLUMNS = [
    ("bgtask_tasks", "id", 32, False),
    ("bgtask_tasks", "type", 200, False),
    ("bgtask_tasks", "thread_id", 200, False),
    ("bgtask_tasks", "status", 16, False),
    ("bgtask_tasks", "worker", 255, True),
    ("bgtask_slots", "type", 200, False),
    ("bgtask_slots", "holder", 32, True),
    ("bgtask_meta", "key", 64, False),
    ("bgtask_schedules", "id", 200, False),
    ("bgtask_schedule_times", "schedule_id", 200, False),
    ("bgtask_schedule_times", "revision", 32, False),
]


def _collate(collation: str | None) -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    # MariaDB will not change the collation of a column a foreign key joins (not even with
    # the checks off): drop the key of schedule times to their schedule, alter, add it again.
    keys = [k["name"] for k in sa.inspect(bind).get_foreign_keys("bgtask_schedule_times") if k["name"]]
    for name in keys:
        op.drop_constraint(name, "bgtask_schedule_times", type_="foreignkey")
    for table, column, length, nullable in COLUMNS:
        op.alter_column(
            table, column,
            existing_type=sa.String(length),
            type_=mysql.VARCHAR(length, charset="utf8mb4", collation=collation),
            existing_nullable=nullable,
        )
    op.create_foreign_key(
        keys[0] if keys else None, "bgtask_schedule_times", "bgtask_schedules", ["schedule_id"], ["id"],
        ondelete="CASCADE",
    )


def upgrade() -> None:
    _collate("utf8mb4_bin")


def downgrade() -> None:
    _collate(None)
