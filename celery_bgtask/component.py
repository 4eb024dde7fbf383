"""``BackgroundTaskComponent``: the record API (create, get, query, retry, cancel, remove)
and handler registration. Running tasks is ``execution``'s job; definitions add on top.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy import Engine, Row

from . import validation as v
from .config import Settings, default_broker, warn_unless_json_only
from .definitions import DefinitionsMixin, TaskDefinition
from .errors import TaskValidationError
from .handlers import HandlerSpec, StateCallback, build_spec, safe_call
from .ids import new_id, parse_task_id, to_urn
from .messages import MAX_CHUNK
from .models import BackgroundTask, HandlerOptions, QueryResult, SortDirection, TaskStatus
from .publish import Wakeup
from .records import retain_until, row_to_task
from .reprs import safe_repr
from .resilience import guarded
from .store import cursor as cursors
from .store.engine import open_engine
from .store.migrate import ensure_schema, installation_secret
from .store.tasks import SORT_KEYS, TaskStore, c
from .timeutil import now_ms

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BackgroundTaskComponent(DefinitionsMixin):
    """Durable background tasks on a Celery app.

    ``database_url`` or ``engine`` selects the database; with neither, ``app.conf.bgtask_database_url``
    and then a SQLite file in the working directory. The schema is migrated on first use.
    """

    def __init__(
        self,
        app: Celery,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        default_retry_interval: int | timedelta | None = None,
        default_retain_for: int | timedelta | None = None,
        cleanup_interval: int | timedelta | None = None,
        queue: str | None = None,
        **settings: Any,
    ) -> None:
        if database_url is not None and engine is not None:
            raise TaskValidationError("database_url", "pass either database_url or engine, not both")
        self.app = app
        self.settings = Settings.resolve(
            app,
            database_url=database_url,
            default_retry_interval=default_retry_interval,
            default_retain_for=default_retain_for,
            cleanup_interval=cleanup_interval,
            queue=queue,
            **settings,
        )
        default_broker(app)
        warn_unless_json_only(app)
        self.engine = engine if engine is not None else open_engine(self.settings.database_url)
        self.store = TaskStore(self.engine)
        self._handlers: dict[str, HandlerSpec] = {}
        self._definitions: dict[str, TaskDefinition] = {}
        self._ready = False
        self._secret: bytes | None = None
        from .execution import install

        self._runner = install(app, self)
        from .scheduled_run import SCHEDULED_TYPE, scheduled_spec

        # Installed here, past ``register_handler``, which refuses the package's reserved types.
        self._handlers[SCHEDULED_TYPE] = scheduled_spec(self)

    # -- plumbing -------------------------------------------------------------------
    def _ensure(self) -> None:
        if not self._ready:
            ensure_schema(self.engine)
            self._ready = True

    def _cursor_secret(self) -> bytes:
        if self._secret is None:
            self._ensure()
            self._secret = installation_secret(self.engine)
        return self._secret

    def _publish(self, task_id: str, attempt: int, queue: str, task_type: str, enqueued_at: int) -> bool:
        """Send the wake-up message whose stamp the record holds in ``enqueued_at`` (see ``_publish_stamped``)."""
        return self._publish_stamped([(task_id, attempt, queue, task_type, enqueued_at)])

    def _publish_stamped(self, wakeups: Sequence[Wakeup], chunk_size: int = 1) -> bool:
        """Publish wake-ups whose records already hold their stamp in ``enqueued_at``.

        If they may not have gone out, the stamps are cleared, so a worker's sweeper publishes
        them: broker trouble is logged and returns False; any other error (a broken install,
        a bug) is raised to the caller once the stamps are cleared.
        """
        sent = False
        try:
            sent = self._runner.publish_many(wakeups, chunk_size)
        finally:
            if not sent:
                self.store.set_enqueued_many([w[0] for w in wakeups], None)
        return sent

    def _notify(self, row: Row[Any] | BackgroundTask[Any, Any]) -> None:
        spec = self._handlers.get(row.type)
        if spec is None or spec.callback is None:
            return  # no callback: no need to build the public record (a pydantic model) at all
        task = row if isinstance(row, BackgroundTask) else row_to_task(row._mapping)
        safe_call("state_change_callback", spec.callback, task, task_id=task.id, task_type=task.type)

    def _finish_retention(self, row: Row[Any]) -> None:
        """``retain_for=0``: the record goes as soon as the final callback has run."""
        if row.retain_for == 0:
            self.store.delete(row.id)

    # -- handlers -------------------------------------------------------------------
    def register_handler(
        self,
        task_type: str,
        module: str | Callable[..., Any],
        method: str | None = None,
        state_change_callback: StateCallback | None = None,
        options: HandlerOptions | dict[str, Any] | None = None,
    ) -> None:
        """Register the function that runs tasks of ``task_type`` (replacing any earlier one).

        Types starting ``celery_bgtask.`` are the package's own and raise ``TaskValidationError``.
        """
        v.user_task_type("task_type", task_type)
        if task_type in self._definitions:
            raise TaskValidationError("task_type", f"{safe_repr(task_type)} is the id of a task definition")
        self._handlers[task_type] = build_spec(task_type, module, method, state_change_callback, options)

    def unregister_handler(self, task_type: str) -> None:
        """Forget the handler (or the task definition of that id); pending tasks of the type stay pending."""
        v.user_task_type("task_type", task_type)
        self._handlers.pop(task_type, None)
        self._definitions.pop(task_type, None)

    def handler(self, task_type: str) -> HandlerSpec | None:
        return self._handlers.get(task_type)

    def handler_types(self) -> list[str]:
        return list(self._handlers)

    # -- create ---------------------------------------------------------------------
    def _new_row(
        self,
        task_type: str,
        payload: Any,
        *,
        retry_count: Any,
        retry_interval: Any,
        retain_for: Any,
        now: int,
        next_run_at: int | None = None,
    ) -> dict[str, Any]:
        v.task_type("task_type", task_type)
        retries = v.retry_count("retry_count", retry_count)
        interval = v.retry_interval("retry_interval", retry_interval)
        retain = v.retain_for_ms("retain_for", retain_for)
        text = v.json_text("payload", payload, max_bytes=self.settings.max_payload_bytes)
        if interval is None and retries is not None:
            interval = self.settings.default_retry_interval
        return {
            "id": new_id(),
            "type": task_type,
            "thread_id": self.settings.queue,
            "status": TaskStatus.PENDING.value,
            "date_created": now,
            "date_modified": now,
            "retain_for": self.settings.default_retain_for if retain is None else retain,
            "retry_interval": interval,
            "retries_remaining": retries,
            "payload": text,
            "next_run_at": now if next_run_at is None else next_run_at,
            "enqueued_at": None,  # stamped when its wake-up is sent (``_commit_and_publish``)
            "attempt": 0,
            "iterations": 0,
            "abort_requested": False,
        }

    def _build_rows(
        self,
        task_type: str,
        payloads: Sequence[Any],
        *,
        retry_count: Any,
        retry_interval: Any,
        retain_for: Any,
        itemised: bool = False,
        field: str = "payload",
        next_run_at: int | None = None,
    ) -> list[dict[str, Any]]:
        """Validated rows for ``payloads``; raises ``TaskValidationError`` before anything is written.

        For the id of a definition registered here, every way in (``create``, ``create_many``,
        ``trigger``) gives the input the same treatment: validated against its
        ``input_model``, the definition's ``retain_for`` when none is given, and
        ``on_before_trigger`` for each input once all are valid. ``itemised`` names a bad
        item's field ``payloads[i].<field>``; ``field`` is what the payload is called.
        """
        v.not_reserved("task_type", task_type)  # the scheduler's firings are built with ``_new_row`` alone
        definition = self._definitions.get(task_type) if isinstance(task_type, str) else None
        if definition is not None and retain_for is None:
            retain_for = definition.retain_for
        now = now_ms()
        rows: list[dict[str, Any]] = []
        values: list[Any] = []
        for index, payload in enumerate(payloads):
            try:
                value = payload if definition is None else definition.parse_input(payload, "payload")
                rows.append(self._new_row(task_type, value, retry_count=retry_count, retry_interval=retry_interval,
                                          retain_for=retain_for, now=now, next_run_at=next_run_at))
            except TaskValidationError as exc:
                name = field if exc.field == "payload" else exc.field
                raise TaskValidationError(f"payloads[{index}].{name}" if itemised else name, exc.rule) from None
            values.append(value)
        if definition is not None and definition.on_before_trigger is not None:
            for value in values:
                definition.on_before_trigger(value)
        return rows

    def _commit_and_publish(self, rows: Sequence[dict[str, Any]], chunk_size: int = 1) -> None:
        """Commit the rows, then publish the wake-ups of those due now; what was not sent is left to
        the sweeper, and an error other than broker trouble is raised after that (``_publish_stamped``)."""
        self._ensure()
        # Stamped now, after validation and hooks, just before the INSERT and the publish: the
        # messages carry the stamp, and the sweeper compares the two (``backlog``).
        stamp = now_ms()
        # A row due later keeps no enqueued_at: the sweeper publishes it when due (no broker ETA).
        due: list[Wakeup] = []
        for r in rows:
            if r["next_run_at"] <= stamp:
                r["enqueued_at"] = stamp
                due.append((r["id"], 0, r["thread_id"], r["type"], stamp))
        self.store.insert(rows)
        if due:
            self._publish_stamped(due, chunk_size)

    @guarded
    def create(
        self,
        task_type: str,
        payload: Any = None,
        *,
        retry_count: int | None = None,
        retry_interval: int | timedelta | None = None,
        retain_for: int | timedelta | None = None,
    ) -> str:
        """Commit a ``pending`` record, then publish its wake-up; return the URN.

        Bad input raises ``TaskValidationError`` and writes nothing. If the broker is down
        the record is still committed; a worker's sweeper publishes it later. Any other error
        while publishing (a broken install, such as a broker transport that cannot be
        imported) is raised, and the record is left committed as ``pending`` with no wake-up
        sent (``enqueued_at`` cleared), so a worker's sweeper publishes it all the same.
        """
        [row] = self._build_rows(task_type, [payload], retry_count=retry_count, retry_interval=retry_interval,
                                 retain_for=retain_for)
        self._commit_and_publish([row])
        return to_urn(row["id"])

    @guarded
    def create_many(
        self,
        task_type: str,
        payloads: Sequence[Any],
        *,
        retry_count: int | None = None,
        retry_interval: int | timedelta | None = None,
        retain_for: int | timedelta | None = None,
        chunk_size: int = 1,
    ) -> list[str]:
        """``create`` for a batch: one multi-row INSERT, then one batched publish. All or nothing on bad input.

        ``chunk_size`` (1 to 1000): how many of the tasks one wake-up message carries. Above
        1, a worker process runs a chunk's tasks one after another, each with its own claim,
        outcome and callbacks, so Celery's per-message work (delivery, the pool, the ack) is
        paid once a chunk. For many short tasks; it trades away parallelism within a chunk.
        A publish error is handled as in ``create``, for every task of the batch.
        """
        if isinstance(payloads, (str, bytes)) or not isinstance(payloads, Sequence):
            raise TaskValidationError("payloads", f"must be a list of payloads, got {type(payloads).__name__}")
        v.strict_int("chunk_size", chunk_size, minimum=1, maximum=MAX_CHUNK, allow_none=False)
        rows = self._build_rows(task_type, payloads, retry_count=retry_count, retry_interval=retry_interval,
                                retain_for=retain_for, itemised=True)
        if rows:
            self._commit_and_publish(rows, chunk_size)
        return [to_urn(r["id"]) for r in rows]

    # -- read -----------------------------------------------------------------------
    @guarded
    def get(self, task_id: str) -> BackgroundTask[Any, Any] | None:
        """The record, or None if there is none (never a made-up ``pending``)."""
        bare = parse_task_id(task_id)
        self._ensure()
        row = self.store.get(bare)
        return None if row is None else row_to_task(row._mapping)

    @guarded
    def query(
        self,
        task_type: str | None = None,
        task_status: TaskStatus | str | None = None,
        sort_property: str = "dateCreated",
        sort_direction: SortDirection | str = SortDirection.ASCENDING,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """One page of records, keyset-paged; pass the returned ``cursor`` for the next page."""
        if task_type is not None:
            v.task_type("task_type", task_type)
        status = None
        if task_status is not None:
            try:
                status = TaskStatus(task_status).value
            except Exception:  # ValueError, or what the repr of a bad value raises
                allowed = ", ".join(s.value for s in TaskStatus)
                got = safe_repr(task_status)
                raise TaskValidationError("task_status", f"must be one of {allowed}, got {got}") from None
        if not isinstance(sort_property, str) or sort_property not in SORT_KEYS:
            raise TaskValidationError(
                "sort_property",
                f"must be one of dateCreated, dateModified, dateCompleted, status, got {safe_repr(sort_property)}",
            )
        try:
            direction = SortDirection(sort_direction)
        except Exception:  # ValueError, or what the repr of a bad value raises
            got = safe_repr(sort_direction)
            raise TaskValidationError("sort_direction", f"must be 'asc' or 'desc', got {got}") from None
        size = v.strict_int("limit", limit, minimum=1, maximum=MAX_LIMIT)
        size = DEFAULT_LIMIT if size is None else size
        column = SORT_KEYS[sort_property]
        fp = cursors.fingerprint(task_type, status, column, direction.value)
        secret = self._cursor_secret()
        after = None
        if cursor is not None:
            key, last_id = cursors.decode(secret, fp, cursor)
            after = (key, last_id)
        rows = self.store.page(
            task_type=task_type, status=status, sort_column=column,
            descending=direction is SortDirection.DESCENDING, after=after, limit=size + 1,
        )
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = None
        if more:
            last = rows[-1]._mapping
            key = last[column] if column != "date_completed" or last[column] is not None else -1
            next_cursor = cursors.encode(secret, fp, key, last["id"])
        return QueryResult(entities=[row_to_task(r._mapping) for r in rows], cursor=next_cursor)

    # -- change ---------------------------------------------------------------------
    @guarded
    def cancel(self, task_id: str, *, include_running: bool = False) -> bool:
        """A ``pending`` task becomes ``cancelled`` and never runs. Returns whether it changed.

        A running task is left alone (and the reason logged): ``abort()`` stops a running
        definition task. ``include_running`` also cancels a ``processing`` record; the worker
        uses it when Celery reports the run was revoked with ``terminate=True``.
        """
        bare = parse_task_id(task_id)
        self._ensure()
        now = now_ms()
        current = self.store.get(bare)
        if current is None:
            log.info("task %s: no record to cancel", bare)
            return False
        allowed = [TaskStatus.PENDING.value]
        if include_running:
            allowed.append(TaskStatus.PROCESSING.value)
        row = self.store.transition(
            bare,
            [c.status.in_(allowed), c.attempt == current.attempt],
            {
                "status": TaskStatus.CANCELLED.value,
                "date_cancelled": now,
                "date_modified": now,
                "date_retain_until": retain_until(current.retain_for, now),
                "next_run_at": None,
                "enqueued_at": None,
                "lease_until": None,
            },
        )
        if row is None:
            _log_not_cancelled(bare, self.store.get(bare) or current)
            return False
        log.info("task %s (type %s) cancelled", bare, row.type)
        self._notify(row)
        self._finish_retention(row)
        return True

    @guarded
    def remove(self, task_id: str) -> bool:
        """Delete the record whatever its retention; a pending task is withdrawn and never runs."""
        bare = parse_task_id(task_id)
        self._ensure()
        return self.store.delete(bare)

    @guarded
    def retry(self, task_id: str) -> bool:
        """Run a task waiting for its next retry now, or requeue a retained ``failed`` task.

        The change is committed before the wake-up is published; a publish error is handled
        as in ``create`` (the task stays ``pending`` for a worker's sweeper to publish).
        """
        bare = parse_task_id(task_id)
        self._ensure()
        now = now_ms()
        waiting = self.store.transition(
            bare,
            [c.status == TaskStatus.PENDING.value, c.next_run_at > now],
            {"next_run_at": now, "enqueued_at": now},
        )
        # A failed record past its retention is only waiting for the cleanup: not retried.
        retained = c.date_retain_until.is_(None) | (c.date_retain_until > now)
        row = waiting or self.store.transition(
            bare,
            [c.status == TaskStatus.FAILED.value, retained],
            {
                "status": TaskStatus.PENDING.value,
                "date_modified": now,
                "date_completed": None,
                "date_retain_until": None,
                "next_run_at": now,
                "enqueued_at": now,
                "lease_until": None,
                # A definition's requeued run gets a fresh iteration budget, resuming from
                # its last committed input; otherwise a max_iterations failure fails again
                # at its first continue.
                "iterations": 0,
            },
        )
        if row is None:
            return False
        if waiting is None:
            log.info("task %s (type %s) requeued from failed", bare, row.type)
            self._notify(row)
        self._publish(bare, row.attempt, row.thread_id, row.type, now)
        return True


def _log_not_cancelled(task_id: str, row: Row[Any]) -> None:
    """Say why ``cancel`` changed nothing: a silent False reads as a bug."""
    if row.status == TaskStatus.PROCESSING.value:
        log.info("task %s (type %s) is processing, so cancel() leaves it running: cancel() changes only a "
                 "pending task; abort() is the way to stop a running definition task", task_id, row.type)
    else:
        log.info("task %s (type %s) is %s, so cancel() changes nothing: only a pending task can be cancelled",
                 task_id, row.type, row.status)
