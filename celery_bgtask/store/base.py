"""``TaskStore``: what the rest of the package asks of a store of task records.

Two implement it: ``sql.SqlTaskStore`` (SQLite, PostgreSQL, MySQL/MariaDB) and
``memory.MemoryTaskStore`` (one process, for unit tests and for users' own tests). State
changes go through ``apply`` with a transition of ``core.state``; each is one atomic
compare-and-set, so exactly one of several racing callers sees the new record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.record import TaskRecord
from ..core.state import Transition

#: ``query`` sort properties (camelCase and snake_case) to record fields. ``dateCompleted``
#: is None until a task finishes; it sorts as -1, so unfinished tasks come first ascending.
SORT_KEYS: dict[str, str] = {
    "dateCreated": "date_created",
    "date_created": "date_created",
    "dateModified": "date_modified",
    "date_modified": "date_modified",
    "dateCompleted": "date_completed",
    "date_completed": "date_completed",
    "status": "status",
}


@dataclass(frozen=True, slots=True)
class PageQuery:
    """One keyset page: ordered by (sort key, id); ``after`` is the previous page's last (key, id)."""

    task_type: str | None
    status: str | None
    sort_field: str
    descending: bool
    after: tuple[Any, str] | None
    limit: int


@dataclass(frozen=True, slots=True)
class Due:
    """A runnable record that needs a wake-up (what the sweeper publishes)."""

    id: str
    type: str
    thread_id: str
    attempt: int
    enqueued_at: int | None


def sort_key(record: TaskRecord, sort_field: str) -> Any:
    """The value ``record`` sorts by (a cursor carries the last one)."""
    value = getattr(record, sort_field)
    return -1 if value is None and sort_field == "date_completed" else value


class TaskStore(Protocol):
    # -- set-up ----------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Make the store ready on first use (migrations); cheap once done."""

    def secret(self) -> bytes:
        """A secret shared by every process on this store (it signs query cursors)."""

    def describe(self) -> str:
        """Where the records are, for a log line (no password)."""

    # -- records ---------------------------------------------------------------------
    def insert(self, records: Sequence[TaskRecord]) -> None:
        """All of them or none."""

    def insert_in(self, connection: Any, records: Sequence[TaskRecord]) -> None:
        """Insert in the caller's open transaction (an SQLAlchemy ``Connection``), uncommitted."""

    def get(self, task_id: str) -> TaskRecord | None: ...

    def page(self, query: PageQuery) -> list[TaskRecord]: ...

    def apply(self, task_id: str, transition: Transition) -> TaskRecord | None:
        """The transition, if the record is in the state it expects: the new record, else None."""

    def delete(self, task_id: str) -> bool: ...

    def abort_requested(self, task_id: str) -> bool:
        """The record's abort flag; a removed record counts as aborted."""

    # -- wake-ups --------------------------------------------------------------------
    def set_enqueued(self, task_ids: Sequence[str], enqueued_at: int | None, *, hint: bool = False) -> None:
        """Stamp (or clear) the records' live wake-up. ``hint``: losing the write only costs a
        duplicate wake-up, so it may commit without waiting for durability."""

    def take_publish(self, task_id: str, attempt: int, old_enqueued: int | None, now: int) -> bool:
        """Compare-and-set ``enqueued_at`` so that one sweeper publishes a given wake-up."""

    def due_for_publish(self, now: int, sent_before: int | None, types: Sequence[str], limit: int) -> list[Due]:
        """Runnable records of ``types`` due by ``now`` with no wake-up (``sent_before`` None,
        earliest due first) or one sent before ``sent_before`` (oldest wake-up first)."""

    # -- the sweeper -----------------------------------------------------------------
    def expired_leases(self, now: int, limit: int) -> list[TaskRecord]: ...

    def delete_expired(self, now: int, limit: int) -> int:
        """Delete up to ``limit`` finished records past their retention (the oldest first) in one
        atomic step, leaving alone those another sweeper is deleting; how many went. ``limit``
        back means there may be more."""

    # -- leases and concurrency slots --------------------------------------------------
    def extend_leases(self, owned: Mapping[str, int], lease_until: int) -> None:
        """Heartbeat: push out the lease of every (id, attempt) still running."""

    def acquire_slot(self, task_type: str, capacity: int, holder: str, now: int, lease_until: int) -> int | None:
        """A free (or expired) slot of ``task_type``; None when all ``capacity`` are held."""

    def extend_slots(self, holders: Sequence[str], lease_until: int) -> None: ...

    def release_slot(self, task_type: str, holder: str) -> None: ...

    def close_held(self) -> None:
        """Let go of connections this process's threads hold (before a fork, at shutdown)."""
