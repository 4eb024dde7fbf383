"""The sweeper's index: (status, enqueued_at, next_run_at) replaces (status, next_run_at).

With only (status, next_run_at), finding due records whose wake-up message is missing or
stale meant reading every due record and filtering on ``enqueued_at``: a poll read the
whole backlog. With ``enqueued_at`` second, each case is a range of the index.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bgtask_tasks_unsent", "bgtask_tasks", ["status", "enqueued_at", "next_run_at"])
    op.drop_index("ix_bgtask_tasks_due", table_name="bgtask_tasks")


def downgrade() -> None:
    op.create_index("ix_bgtask_tasks_due", "bgtask_tasks", ["status", "next_run_at"])
    op.drop_index("ix_bgtask_tasks_unsent", table_name="bgtask_tasks")
