"""``MemoryTaskStore``: task records in this process's memory, behind the ``TaskStore`` protocol.

For unit tests of the state machine: the same suite (``tests/suites/state_machine.py``)
runs against it and against every SQL store, so it behaves as they do. Nothing is shared
with other processes.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.record import TaskRecord
from ..core.state import PENDING, PROCESSING, TERMINAL, Transition, matches
from ..errors import TaskValidationError
from .base import Due, PageQuery, sort_key


class MemoryTaskStore:
    def __init__(self) -> None:
        self._records: dict[str, TaskRecord] = {}
        self._slots: dict[tuple[str, int], tuple[str | None, int | None]] = {}
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)

    def ensure_schema(self) -> None:
        return None

    def secret(self) -> bytes:
        return self._secret

    def describe(self) -> str:
        return "memory"

    # -- records ---------------------------------------------------------------------
    def insert(self, records: Sequence[TaskRecord]) -> None:
        with self._lock:
            if any(r.id in self._records for r in records) or len({r.id for r in records}) != len(records):
                raise KeyError("a task id is already taken")
            self._records.update((r.id, r) for r in records)

    def insert_in(self, connection: Any, records: Sequence[TaskRecord]) -> None:
        """There is no SQL transaction to join in memory."""
        raise TaskValidationError("connection", "the in-memory store has no SQL transaction to join")

    def get(self, task_id: str) -> TaskRecord | None:
        return self._records.get(task_id)

    def page(self, query: PageQuery) -> list[TaskRecord]:
        with self._lock:
            found = [r for r in self._records.values()
                     if (query.task_type is None or r.type == query.task_type)
                     and (query.status is None or r.status == query.status)]
        keyed = sorted(((sort_key(r, query.sort_field), r.id), r) for r in found)
        if query.descending:
            keyed.reverse()
        if query.after is not None:
            after = query.after
            keyed = [(k, r) for k, r in keyed if (k < after if query.descending else k > after)]
        return [r for _, r in keyed[:query.limit]]

    def apply(self, task_id: str, transition: Transition) -> TaskRecord | None:
        with self._lock:
            record = self._records.get(task_id)
            if record is None or not matches(record, transition.expect):
                return None
            new = dataclasses.replace(record, **transition.values)
            self._records[task_id] = new
            return new

    def delete(self, task_id: str) -> bool:
        with self._lock:
            return self._records.pop(task_id, None) is not None

    def abort_requested(self, task_id: str) -> bool:
        record = self._records.get(task_id)
        return True if record is None else record.abort_requested

    # -- wake-ups --------------------------------------------------------------------
    def set_enqueued(self, task_ids: Sequence[str], enqueued_at: int | None, *, hint: bool = False) -> None:
        with self._lock:
            for task_id in task_ids:
                if (record := self._records.get(task_id)) is not None:
                    self._records[task_id] = dataclasses.replace(record, enqueued_at=enqueued_at)

    def take_publish(self, task_id: str, attempt: int, old_enqueued: int | None, now: int) -> bool:
        with self._lock:
            record = self._records.get(task_id)
            if record is None or record.attempt != attempt or record.enqueued_at != old_enqueued:
                return False
            self._records[task_id] = dataclasses.replace(record, enqueued_at=now)
            return True

    def due_for_publish(self, now: int, sent_before: int | None, types: Sequence[str], limit: int) -> list[Due]:
        wanted = set(types)

        def needs(r: TaskRecord) -> bool:
            runnable = r.status == PENDING or (r.status == PROCESSING and r.lease_until is None)
            sent = r.enqueued_at is None if sent_before is None else (
                r.enqueued_at is not None and r.enqueued_at < sent_before)
            return runnable and sent and r.type in wanted and r.next_run_at is not None and r.next_run_at <= now

        with self._lock:
            found = [r for r in self._records.values() if needs(r)]
        found.sort(key=lambda r: (r.next_run_at if sent_before is None else r.enqueued_at) or 0)
        return [Due(r.id, r.type, r.thread_id, r.attempt, r.enqueued_at) for r in found[:limit]]

    # -- the sweeper -----------------------------------------------------------------
    def expired_leases(self, now: int, limit: int) -> list[TaskRecord]:
        with self._lock:
            return [r for r in self._records.values()
                    if r.status == PROCESSING and r.lease_until is not None and r.lease_until < now][:limit]

    def delete_expired(self, now: int, limit: int) -> int:
        """As the SQL stores: the ``limit`` records whose retention ended first, those finished deleted."""
        with self._lock:
            expired = sorted((r.date_retain_until, r.id) for r in self._records.values()
                             if r.date_retain_until is not None and r.date_retain_until < now)[:limit]
            chosen = [task_id for _, task_id in expired if self._records[task_id].status in TERMINAL]
            for task_id in chosen:
                del self._records[task_id]
        return len(chosen)

    # -- leases and concurrency slots --------------------------------------------------
    def extend_leases(self, owned: Mapping[str, int], lease_until: int) -> None:
        with self._lock:
            for task_id, attempt in owned.items():
                r = self._records.get(task_id)
                if r is not None and r.attempt == attempt and r.status == PROCESSING:
                    self._records[task_id] = dataclasses.replace(r, lease_until=lease_until)

    def acquire_slot(self, task_type: str, capacity: int, holder: str, now: int, lease_until: int) -> int | None:
        with self._lock:
            for n in range(capacity):
                held_by, until = self._slots.get((task_type, n), (None, None))
                if held_by is None or held_by == holder or (until is not None and until < now):
                    self._slots[(task_type, n)] = (holder, lease_until)
                    return n
        return None

    def extend_slots(self, holders: Sequence[str], lease_until: int) -> None:
        wanted = set(holders)
        with self._lock:
            for key, (held_by, _) in list(self._slots.items()):
                if held_by in wanted:
                    self._slots[key] = (held_by, lease_until)

    def release_slot(self, task_type: str, holder: str) -> None:
        with self._lock:
            for key, (held_by, _) in list(self._slots.items()):
                if key[0] == task_type and held_by == holder:
                    self._slots[key] = (None, None)

    def close_held(self) -> None:
        return None
