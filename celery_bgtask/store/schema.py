"""The tables, as SQLAlchemy Core metadata. The alembic migrations create exactly these.

Instants are BIGINT epoch milliseconds (see ``timeutil``). JSON columns are text written
with ``json.dumps`` so every dialect stores the same bytes (and nothing is ever pickled).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

metadata = MetaData()

#: MySQL's TEXT holds only 64 KB; payloads may be up to the configured maximum (1 MB by default).
JsonText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def Name(length: int) -> TypeEngine[str]:
    """A name or id compared for equality: on MySQL/MariaDB in binary collation, because the
    default one finds "abc", "ABC", "abc " and "äbc" equal (and every emoji equal to every other)."""
    return String(length).with_variant(mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"),
                                       "mysql", "mariadb")


tasks = Table(
    "bgtask_tasks",
    metadata,
    Column("id", Name(32), primary_key=True),
    Column("type", Name(200), nullable=False),
    Column("thread_id", Name(200), nullable=False),
    Column("status", Name(16), nullable=False),
    Column("date_created", BigInteger, nullable=False),
    Column("date_modified", BigInteger, nullable=False),
    Column("date_completed", BigInteger),
    Column("date_cancelled", BigInteger),
    Column("date_retain_until", BigInteger),
    # Resolved retention: -1 forever, 0 remove on finish, N ms after the last change.
    Column("retain_for", BigInteger, nullable=False),
    Column("retry_interval", Integer),
    Column("retries_remaining", Integer),
    Column("payload", JsonText),
    Column("result", JsonText),
    Column("error", JsonText),
    # Execution bookkeeping (not part of the TWIN shape).
    Column("next_run_at", BigInteger),  # due time while pending (or between iterations)
    Column("enqueued_at", BigInteger),  # last time a wake-up message was published
    Column("attempt", Integer, nullable=False, server_default="0"),  # fencing counter, +1 per claim
    Column("lease_until", BigInteger),  # a running claim is valid until then
    Column("worker", Name(255)),
    Column("iterations", Integer, nullable=False, server_default="0"),
    Column("abort_requested", Boolean, nullable=False, server_default="0"),
    Index("ix_bgtask_tasks_type_status_created", "type", "status", "date_created", "id"),
    Index("ix_bgtask_tasks_status_created", "status", "date_created", "id"),
    Index("ix_bgtask_tasks_created", "date_created", "id"),
    Index("ix_bgtask_tasks_modified", "date_modified", "id"),
    # The sweeper's search for due records without a live message (``due_for_publish``).
    Index("ix_bgtask_tasks_unsent", "status", "enqueued_at", "next_run_at"),
    Index("ix_bgtask_tasks_lease", "lease_until"),
    Index("ix_bgtask_tasks_retain", "date_retain_until"),
)

#: Concurrency slots for ``HandlerOptions.max_worker_count``: a leased row per (type, slot).
slots = Table(
    "bgtask_slots",
    metadata,
    Column("type", Name(200), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("holder", Name(32)),
    Column("lease_until", BigInteger),
)

#: Installation-wide settings, e.g. the secret that signs query cursors.
meta = Table(
    "bgtask_meta",
    metadata,
    Column("key", Name(64), primary_key=True),
    Column("value", Text, nullable=False),
)

schedules = Table(
    "bgtask_schedules",
    metadata,
    Column("id", Name(200), primary_key=True),
    Column("callback", Text, nullable=False),
    Column("date_created", BigInteger, nullable=False),
    Column("date_modified", BigInteger, nullable=False),
    # A beat_schedule entry: its args/kwargs/options (JSON), its hash, and when a running
    # beat that has it last said so (an entry no beat has for a while is removed).
    Column("call", Text),
    Column("origin", String(16)),
    Column("entry_hash", String(32)),
    Column("seen_at", BigInteger),
)

schedule_times = Table(
    "bgtask_schedule_times",
    metadata,
    Column("schedule_id", Name(200), ForeignKey("bgtask_schedules.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    # A fresh token per add_task, so a beat holding a row of a replaced schedule cannot claim the new one.
    Column("revision", Name(32), nullable=False),
    Column("next_trigger_time", BigInteger),
    Column("interval_days", Integer),
    Column("interval_hours", Integer),
    Column("interval_minutes", Integer),
    Column("interval_seconds", Integer),
    Column("cron", String(200)),
    Column("timezone", String(64)),
    # A paused time keeps its trigger here (next_trigger_time is NULL, so no tick reads it).
    Column("paused", Boolean),  # True while paused, else NULL (no default to differ between dialects)
    Column("paused_trigger", BigInteger),
    # Its last firing, written by the claim's compare-and-set itself (no extra statement).
    Column("last_fired_at", BigInteger),
    Column("last_task_id", Name(32)),
    Index("ix_bgtask_schedule_times_next", "next_trigger_time"),
)
