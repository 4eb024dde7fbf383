"""``BackgroundTaskComponent``: the record API (create, get, query, retry, cancel, remove) over
the ``TaskStore`` protocol, and the handler registry. Running tasks is the ``celery`` package's
job; definitions add on top.

Every committed change goes through ``commit``, which tells the event bus (``core.events``):
state-change callbacks, definition hooks and ``retain_for=0`` removal are its subscribers.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from celery import Celery
from pydantic import BaseModel
from sqlalchemy import Engine

from . import validation as v
from .celery import install
from .celery.messages import MAX_CHUNK
from .celery.publish import Wakeup
from .config import Settings, default_broker, warn_unless_json_only
from .core import state
from .core.events import EventBus
from .core.record import TaskRecord
from .definitions import DEFAULT_MAX_ITERATIONS, DefinitionInfo, Definitions, Hook, RunFunction, TaskDefinition
from .definitions.abort import abort_task
from .durable import DurableTask
from .errors import HandlerNotFoundError, TaskValidationError
from .handlers import HandlerSpec, StateCallback, build_spec
from .ids import parse_task_id, to_urn
from .intake import build_records
from .limits import seconds
from .models import BackgroundTask, HandlerOptions, QueryResult, SortDirection, TaskStatus
from .paging import query_page
from .records import to_public
from .reprs import safe_repr
from .resilience import guarded
from .scheduling.firing import SCHEDULED_TYPE, scheduled_spec
from .store.base import TaskStore
from .store.engine import open_engine
from .store.sql import SqlTaskStore
from .subscribers import removal_when_done, state_callbacks
from .timeutil import now_ms
from .transactional import Transactional, insert_in_transaction
from .writes import Writer

log = logging.getLogger(__name__)


class BackgroundTaskComponent:
    """Durable background tasks on a Celery app.

    ``database_url`` or ``engine`` selects the database; with neither, ``app.conf.bgtask_database_url``
    and then a SQLite file in the working directory. The schema is migrated on first use.
    Building one installs the package's tasks and worker bootstep on ``app``
    (``celery.install``), and, when the app has no broker configured at all, sets Celery's
    in-memory one (``memory://``), so the embedded default runs in one process.
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
        self.store: TaskStore = SqlTaskStore(self.engine)
        self._handlers: dict[str, HandlerSpec] = {}
        #: Every committed change is told here; callbacks and retention are its first subscribers.
        self.events = EventBus()
        self.events.subscribe(state_callbacks(self._handlers))
        self.events.subscribe(removal_when_done(self.store))
        self._writer = Writer(self.store, self.events, lambda wakeups, size: self.runner.publish_many(wakeups, size))
        #: This app's worker side: the Celery tasks, publishing and the per-process state.
        self.runner = install(app, self)
        self._definitions = Definitions(self._handlers, self.store, self.settings.max_payload_bytes,
                                        self._run_soft_limit)
        # Installed here, past ``register_handler``, which refuses the package's reserved types.
        self._handlers[SCHEDULED_TYPE] = scheduled_spec(app, self.engine)
        port = app.conf.get("bgtask_metrics_port")
        if port is not None:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise TaskValidationError("bgtask_metrics_port", f"must be a port number, 1 to 65535, got {port!r}")
            # The one door to an optional extra: loaded by name, only when asked for.
            importlib.import_module("celery_bgtask.contrib.prometheus").serve_from_worker(self, port)

    # -- what the Celery side and the definitions use (``celery.host.Host``) -----------
    def ensure_ready(self) -> None:
        self._writer.ensure_ready()

    def commit(self, task_id: str, transition: state.Transition) -> TaskRecord | None:
        """Apply a transition and tell the event bus (``writes.Writer.commit``)."""
        return self._writer.commit(task_id, transition)

    def publish(self, wakeups: Sequence[Wakeup], chunk_size: int = 1) -> bool:
        """Publish stamped wake-ups; those that may not have gone out are left to the sweeper."""
        return self._writer.publish(wakeups, chunk_size)

    def _run_soft_limit(self) -> float | None:
        """The run task's soft time limit, which Celery enforces on a run message."""
        per_task = self.runner.task.soft_time_limit
        return float(per_task) if per_task else None

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
        if task_type in self._definitions.by_id:
            raise TaskValidationError("task_type", f"{safe_repr(task_type)} is the id of a task definition")
        self._handlers[task_type] = build_spec(task_type, module, method, state_change_callback, options)

    def task(self, type_or_fn: str | Callable[..., Any] | None = None, /, *, retry_count: int | None = None,
             retry_interval: int | timedelta | None = None, retain_for: int | timedelta | None = None,
             state_change_callback: StateCallback | None = None,
             options: HandlerOptions | dict[str, Any] | None = None) -> Any:
        """``@bg.task``, ``@bg.task("type", retry_count=3, ...)``: the drop-in for ``@app.task``.

        Registers the function as the handler of its type (default ``module.qualname``) and
        returns a ``DurableTask`` whose ``create`` / ``delay`` take these options as defaults.
        """
        if type_or_fn is not None and not isinstance(type_or_fn, str) and not callable(type_or_fn):
            raise TaskValidationError("task_type", f"must be a str or the decorated function, got "
                                                   f"{type(type_or_fn).__name__}")
        defaults = {k: v for k, v in dict(retry_count=retry_count, retry_interval=retry_interval,
                                          retain_for=retain_for).items() if v is not None}
        # Bad options fail at decoration, not at the first create.
        self.build_records("durable-task-options", [None], retry_count=retry_count, retry_interval=retry_interval,
                           retain_for=retain_for)

        def decorate(fn: Callable[..., Any]) -> DurableTask[Any]:
            task_type = type_or_fn if isinstance(type_or_fn, str) else f"{fn.__module__}.{fn.__qualname__}"
            self.register_handler(task_type, fn, state_change_callback=state_change_callback, options=options)
            return DurableTask(self, task_type, fn, defaults)

        return decorate(type_or_fn) if callable(type_or_fn) else decorate

    def unregister_handler(self, task_type: str) -> None:
        """Forget the handler (or the task definition of that id); pending tasks of the type stay pending."""
        v.user_task_type("task_type", task_type)
        self._handlers.pop(task_type, None)
        self._definitions.forget(task_type)

    def handler(self, task_type: str) -> HandlerSpec | None:
        return self._handlers.get(task_type)

    def handler_types(self) -> list[str]:
        return list(self._handlers)

    # -- create ---------------------------------------------------------------------
    def build_records(self, task_type: str, payloads: Sequence[Any], **options: Any) -> list[TaskRecord]:
        """Validated records of ``payloads`` (``intake.build_records``), nothing written yet."""
        return build_records(self.settings, self._definitions.by_id, task_type, payloads, **options)

    def commit_and_publish(self, records: Sequence[TaskRecord], chunk_size: int = 1,
                           connection: Transactional | None = None) -> None:
        """Commit and publish; with ``connection``, insert in the caller's transaction and
        publish after it commits (``transactional``)."""
        if connection is None:
            self._writer.insert_and_publish(records, chunk_size)
        else:
            insert_in_transaction(self._writer, self.engine, connection, records, chunk_size)

    @guarded
    def create(
        self,
        task_type: str,
        payload: Any = None,
        *,
        retry_count: int | None = None,
        retry_interval: int | timedelta | None = None,
        retain_for: int | timedelta | None = None,
        connection: Transactional | None = None,
    ) -> str:
        """Commit a ``pending`` record, then publish its wake-up; return the URN.

        Bad input raises ``TaskValidationError`` and writes nothing. If the broker is down
        the record is still committed; a worker's sweeper publishes it later. Any other error
        while publishing (a broken install, such as a broker transport that cannot be
        imported) is raised, and the record is left committed as ``pending`` with no wake-up
        sent (``enqueued_at`` cleared), so a worker's sweeper publishes it all the same.
        ``connection`` (an SQLAlchemy ``Connection`` or ``Session`` inside a transaction): the
        record commits or rolls back with it, and is published only after its commit.
        """
        [record] = self.build_records(task_type, [payload], retry_count=retry_count, retry_interval=retry_interval,
                                      retain_for=retain_for)
        self.commit_and_publish([record], connection=connection)
        return to_urn(record.id)

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
        connection: Transactional | None = None,
    ) -> list[str]:
        """``create`` for a batch: one multi-row INSERT, then one batched publish. All or nothing on bad input.

        ``chunk_size`` (1 to 1000): how many of the tasks one wake-up message carries. Above
        1, a worker process runs a chunk's tasks one after another, each with its own claim,
        outcome and callbacks, so Celery's per-message work (delivery, the pool, the ack) is
        paid once a chunk. For many short tasks; it trades away parallelism within a chunk.
        A publish error is handled as in ``create``, for every task of the batch; ``connection``
        as in ``create``.
        """
        if isinstance(payloads, (str, bytes)) or not isinstance(payloads, Sequence):
            raise TaskValidationError("payloads", f"must be a list of payloads, got {type(payloads).__name__}")
        v.strict_int("chunk_size", chunk_size, minimum=1, maximum=MAX_CHUNK, allow_none=False)
        records = self.build_records(task_type, payloads, retry_count=retry_count, retry_interval=retry_interval,
                                     retain_for=retain_for, itemised=True)
        if records:
            self.commit_and_publish(records, chunk_size, connection)
        return [to_urn(r.id) for r in records]

    # -- definitions ----------------------------------------------------------------
    def definition(
        self,
        id: str,
        title: str | None = None,
        description: str | None = None,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        input_model: type[BaseModel] | None = None,
        private: bool = False,
        retain_for: int | timedelta | None = None,
        on_before_trigger: Callable[[Any], Any] | None = None,
        on_done: Hook | None = None,
        on_error: Hook | None = None,
        on_abort: Hook | None = None,
        on_max_iterations: Hook | None = None,
        soft_time_limit: float | timedelta | None = None,
        state_change_callback: StateCallback | None = None,
    ) -> Callable[[RunFunction], RunFunction]:
        """Decorator: register the decorated ``run(ctx)`` as the definition ``id``.

        ``id`` is the task type of its records; it must not be the type of a handler.
        ``retain_for`` (ms) sits between ``trigger``'s and the component default;
        ``soft_time_limit`` (seconds) is what ``ctx.runtime.is_close_to_timeout()`` measures
        against. Returns the function unchanged.
        """
        fields = dict(
            id=id, title=title, description=description, max_iterations=max_iterations, input_model=input_model,
            private=private, retain_for=retain_for, on_before_trigger=on_before_trigger, on_done=on_done,
            on_error=on_error, on_abort=on_abort, on_max_iterations=on_max_iterations,
            soft_time_limit=soft_time_limit, state_change_callback=state_change_callback,
        )
        v.user_task_type("id", id)
        return self._definitions.decorator(fields)

    def get_definition(self, definition_id: str) -> TaskDefinition | None:
        return self._definitions.by_id.get(definition_id)

    def definitions(self, include_private: bool = True) -> list[DefinitionInfo]:
        """The registered definitions (id, title, description, private), in registration order."""
        return self._definitions.infos(include_private)

    @guarded
    def trigger(
        self,
        definition_id: str,
        input: Any = None,
        delay: float | timedelta | None = None,
        retain_for: int | timedelta | None = None,
        connection: Transactional | None = None,
    ) -> str:
        """Start a run of a definition; return the task URN.

        ``input`` is validated against the definition's ``input_model`` (a failure raises
        ``TaskValidationError`` listing each invalid field); then ``on_before_trigger(input)``
        runs, and whatever it raises reaches you unchanged. Only then is the record written
        (``pending``) and queued; with ``delay`` (seconds or a ``timedelta``) it becomes due
        that much later. ``retain_for`` (ms) overrides the definition's, which overrides the
        component default. ``connection``: as in ``create``.
        """
        v.task_type("definition_id", definition_id)
        definition = self._definitions.by_id.get(definition_id)
        if definition is None:
            raise HandlerNotFoundError(definition_id)
        wait = seconds("delay", delay)
        due = None if not wait else now_ms() + int(wait * 1000)
        [record] = self.build_records(definition.id, [input], retry_count=None, retry_interval=None,
                                      retain_for=retain_for, field="input", next_run_at=due)
        self.commit_and_publish([record], connection=connection)
        log.info("definition %s triggered as task %s", definition.id, record.id)
        return to_urn(record.id)

    @guarded
    def abort(self, task_id: str, message: str | None = None) -> bool:
        """Ask a task to stop, from any process. Returns False when it had already finished.

        A waiting task (pending, or between iterations) is cancelled at once. A running one
        gets its ``abort_requested`` flag set: ``ctx.runtime.is_aborted()`` turns true, and the
        task becomes ``cancelled`` when its run returns ``aborted()`` or at the next iteration
        boundary.
        """
        return abort_task(self.store, self.commit, task_id, message)

    # -- read -----------------------------------------------------------------------
    @guarded
    def get(self, task_id: str) -> BackgroundTask[Any, Any] | None:
        """The record, or None if there is none (never a made-up ``pending``)."""
        bare = parse_task_id(task_id)
        self.ensure_ready()
        record = self.store.get(bare)
        return None if record is None else to_public(record)

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
        return query_page(self.store, task_type, task_status, sort_property, sort_direction, cursor, limit)

    # -- change ---------------------------------------------------------------------
    @guarded
    def cancel(self, task_id: str, *, include_running: bool = False) -> bool:
        """A ``pending`` task becomes ``cancelled`` and never runs. Returns whether it changed.

        A running task is left alone (and the reason logged): ``abort()`` stops a running
        definition task. ``include_running`` also cancels a ``processing`` record; the worker
        uses it when Celery reports the run was revoked with ``terminate=True``.
        """
        return self._writer.cancel(parse_task_id(task_id), include_running)

    @guarded
    def remove(self, task_id: str) -> bool:
        """Delete the record whatever its retention; a pending task is withdrawn and never runs."""
        bare = parse_task_id(task_id)
        self.ensure_ready()
        return self.store.delete(bare)

    @guarded
    def retry(self, task_id: str) -> bool:
        """Run a task waiting for its next retry now, or requeue a retained ``failed`` task.

        The change is committed before the wake-up is published; a publish error is handled
        as in ``create`` (the task stays ``pending`` for a worker's sweeper to publish).
        """
        return self._writer.retry(parse_task_id(task_id))
