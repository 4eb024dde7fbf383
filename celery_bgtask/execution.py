"""The Celery side: one Celery task runs every task type.

A message carries ``(task_id, expected_attempt)`` and the type (for routing); one that does
not have that form is logged and dropped (``messages``). The worker:

1. checks that this process has a handler for the type (else it leaves the record
   pending, and a worker that has the handler picks it up through the sweeper);
2. takes a concurrency slot when the type has ``max_worker_count``;
3. claims the record with one conditional UPDATE (pending/between iterations, due, of the
   message's type, at the expected attempt -> processing under a lease). A duplicate message, a cancelled or
   removed task, or a stale wake-up fails the claim and does nothing;
4. runs the handler and commits the outcome, fenced by the attempt number;
5. tells Celery the outcome the same way Celery would see it: a return for success,
   ``Retry`` for pending-again, an exception for failure. The state-change callbacks and
   retention clean-up run from the ``task_success`` / ``task_retry`` / ``task_failure``
   signals that Celery then sends (in the pool process, before the message is acked).

A chunk of ``create_many(..., chunk_size=n)`` comes as one ``run_many`` message carrying
several ``(task_id, expected_attempt)`` pairs; ``Runner.execute_many`` runs each as above,
one after another, and settles each outcome itself (Celery's signals see only the message).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from celery import Celery, signals
from celery.exceptions import Ignore, Reject, Retry
from pydantic import ValidationError
from sqlalchemy import Row

from .backlog import Backlog
from .errors import BgTaskError, StoreUnavailableError
from .handlers import HandlerSpec
from .lifecycle import ProcessLifecycle
from .messages import Key, chunk_keys, parse_run, parse_run_many, run_key
from .models import ErrorInfo
from .outcome import Outcome, record_update
from .publish import Wakeup, WakeupSender, broker_trouble
from .resilience import with_retries
from .timeutil import now_ms
from .validation import json_text

if TYPE_CHECKING:
    from .component import BackgroundTaskComponent

log = logging.getLogger(__name__)

RUN_TASK = "celery_bgtask.run"
#: A chunk of ``create_many(..., chunk_size=n)``: ``run_many([[task_id, attempt], ...], task_type=...)``.
RUN_MANY_TASK = "celery_bgtask.run_many"
_runners: weakref.WeakSet[Runner] = weakref.WeakSet()


class TaskFailed(BgTaskError):
    """Raised to Celery when a task's run failed for good; the record holds the details."""

    def __init__(self, task_id: str, error: ErrorInfo | None) -> None:
        self.task_id = task_id
        self.error = error
        what = f"{error.name}: {error.message}" if error else "failed"
        super().__init__(f"task {task_id} failed: {what}")

    def __reduce__(self) -> tuple[type[TaskFailed], tuple[str, ErrorInfo | None]]:
        # Celery keeps an exception only if it survives a copy by its constructor's
        # arguments; otherwise it logs a stand-in of a base class, which no longer matches
        # ``throws`` and is reported as "raised unexpected" with a traceback.
        return type(self), (self.task_id, self.error)


class _Heartbeat:
    """Keeps the leases (and slots) of the runs in this process alive while they run."""

    def __init__(self, component: BackgroundTaskComponent) -> None:
        self.component = component
        self.running: dict[str, int] = {}
        self.lock = threading.Lock()
        self.pid = 0
        self.stop = threading.Event()

    def add(self, task_id: str, attempt: int) -> None:
        with self.lock:
            self.running[task_id] = attempt
            if self.pid != os.getpid():
                self.pid = os.getpid()
                self.stop = threading.Event()
                threading.Thread(target=self._beat, name="bgtask-lease", daemon=True).start()

    def remove(self, task_id: str) -> None:
        with self.lock:
            self.running.pop(task_id, None)

    def close(self) -> None:
        """Stop this process's heartbeat thread; the next run starts a new one."""
        with self.lock:
            self.stop.set()
            self.pid = 0

    def _beat(self) -> None:
        period = self.component.settings.lease / 3000
        stop = self.stop
        while not stop.wait(period):
            with self.lock:
                owned = dict(self.running)
            if not owned:
                continue
            until = now_ms() + self.component.settings.lease
            try:
                self.component.store.extend_leases(owned, until)
                self.component.store.extend_slots(owned, until)
            except Exception:
                log.exception("could not extend leases of %s", sorted(owned))


class Runner:
    """Owns the Celery task and the per-process execution state of one component."""

    def __init__(self, app: Celery, component: BackgroundTaskComponent) -> None:
        self.app = app
        self.component = component
        self.lifecycle = ProcessLifecycle()
        self.heartbeat = _Heartbeat(component)
        #: In a worker's main process: the newest wake-up received from each queue (for the sweeper).
        self.backlog = Backlog(app)
        #: Committed outcomes waiting for Celery's signal, by (task id, the message's attempt).
        #: Keyed by attempt too: a retry's next run may start (on another pool thread) and
        #: commit before the signal of the run before it has been handled.
        self.outcomes: dict[tuple[str, int], tuple[str, Row[Any]]] = {}
        self.hostname = f"{socket.gethostname()}:{os.getpid()}"

        runner = self
        # Acked only once the outcome is committed; a lost pool process requeues the message.
        options: dict[str, Any] = {"shared": False, "bind": True, "acks_late": True, "reject_on_worker_lost": True,
                                   "ignore_result": True, "serializer": "json",
                                   "Strategy": "celery_bgtask.messages:guarded_strategy"}

        # ``throws``: an expected outcome, already recorded: Celery logs it without a traceback.
        # Any arguments are taken, and checked by ``messages``: a message crafted onto the broker
        # that is not what ``publish`` sends is logged and dropped, not a TypeError per delivery.
        @app.task(name=RUN_TASK, throws=(TaskFailed,), **options)
        def run(task: Any, *args: Any, **kwargs: Any) -> Any:
            parsed = parse_run(args, kwargs)
            if parsed is None:
                return None
            (task_id, attempt), task_type = parsed
            with _requeued_while_unavailable(f"task {task_id}"):
                return runner.execute(task, task_id, attempt, task_type)

        @app.task(name=RUN_MANY_TASK, **options)
        def run_many(task: Any, *args: Any, **kwargs: Any) -> None:
            parsed = parse_run_many(args, kwargs)
            if parsed is None:
                return
            keys, task_type = parsed
            with _requeued_while_unavailable("a chunk of tasks"):
                runner.execute_many(task, keys, task_type)

        self.task = run
        self.many_task = run_many
        self.sender = WakeupSender(app, run, run_many)

    # -- producing ----------------------------------------------------------------
    def publish(self, task_id: str, attempt: int, queue: str, countdown: float | None, task_type: str | None,
                enqueued_at: int) -> bool:
        """Send one wake-up; ``enqueued_at`` is the stamp the record holds (or is about to) for it."""
        wakeup = (task_id, attempt, queue, task_type, enqueued_at)
        return _sent(self.app, lambda: self.sender.send(wakeup, countdown), f"task {task_id}")

    def publish_many(self, wakeups: Sequence[Wakeup], chunk_size: int = 1) -> bool:
        """Publish wake-ups over one producer, as one batch (see ``WakeupSender.send_many``).

        Returns False if the broker failed and any may not have been sent: the caller clears
        ``enqueued_at`` of all of them and the sweeper publishes them again (a duplicate
        wake-up is harmless: its claim fails the attempt fence). Any other error is raised.
        """
        return _sent(self.app, lambda: self.sender.send_many(wakeups, chunk_size), f"{len(wakeups)} tasks")

    # -- running ------------------------------------------------------------------
    def execute(self, task: Any, task_id: str, attempt: int, task_type: str | None) -> Any:
        """Run one wake-up and tell Celery the committed outcome the way Celery would see it."""
        ran = self._execute(task, task_id, attempt, task_type)
        return None if ran is None else _report(task_id, *ran)

    def _execute(self, task: Any, task_id: str, attempt: int,
                 task_type: str | None) -> tuple[tuple[str, Row[Any]] | None, Outcome] | None:
        """Claim, run and commit one task: the committed (kind, row) (None if the claim was
        lost meanwhile) and the outcome, or None when nothing ran."""
        comp = self.component
        with_retries("schema", comp._ensure)
        if task_type is None:
            row0 = comp.store.get(task_id)
            if row0 is None:
                log.info("task %s: no record (removed, or an id from elsewhere); nothing to run", task_id)
                return None
            task_type = row0.type
        spec = comp.handler(task_type)
        if spec is None:
            log.warning("task %s: no handler for type %r in this worker; it stays pending", task_id, task_type)
            comp.store.release_wakeup(task_id, task_type, attempt)
            return None

        capped = spec.options.max_worker_count
        now = now_ms()
        lease_until = now + comp.settings.lease
        if capped is not None:
            slot = with_retries("slot", lambda: comp.store.acquire_slot(task_type, capped, task_id, now, lease_until))
            if slot is None:
                log.info("task %s (type %s): %d already running; it waits as pending", task_id, task_type, capped)
                comp.store.release_wakeup(task_id, task_type, attempt)
                return None
        worker = f"{getattr(task.request, 'hostname', None) or self.hostname}"
        row = with_retries("claim", lambda: comp.store.claim(task_id, task_type, attempt, now, lease_until, worker))
        if row is None:
            if capped is not None:
                comp.store.release_slot(task_type, task_id)
            _log_claim_lost(comp.store.get(task_id), task_id, task_type, attempt)
            return None
        claimed = attempt + 1
        self.heartbeat.add(task_id, claimed)
        try:
            log.info("task %s (type %s) processing, attempt %d", task_id, task_type, claimed)
            comp._notify(row)
            outcome = self._run(spec, row, task)
            return self._commit(task_id, task_type, claimed, row, outcome), outcome
        finally:
            self.heartbeat.remove(task_id)
            if capped is not None:
                comp.store.release_slot(task_type, task_id)

    def execute_many(self, task: Any, keys: Sequence[Key], task_type: str | None) -> None:
        """Run the tasks of one chunked wake-up one after another, each exactly as ``execute`` would.

        Each has its own claim, outcome commit and state-change callbacks; a failure or a
        retry of one does not stop the rest. The message is acked only after the last one
        (``acks_late``). If the worker is lost mid-chunk, the task that was running is
        recovered by the sweeper when its lease runs out, and the tasks not yet run stay
        pending: the sweeper publishes them again after ``redeliver_after``, or the broker
        redelivers the chunk first (then the tasks already finished, or already taken, fail
        their claim and are skipped). An unexpected error (the database gone beyond
        ``with_retries``) stops the chunk the same way and is raised to Celery.
        """
        for key in keys:
            # Recorded, not reported: Celery's signals see only the whole message, so settle here.
            self._execute(task, key[0], key[1], task_type)
            self.settle(key)

    def _run(self, spec: HandlerSpec, row: Row[Any], task: Any) -> Outcome:
        if spec.execute is not None:
            return spec.execute(row, task)
        self.lifecycle.enter(spec)
        try:
            payload = None if row.payload is None else json.loads(row.payload)
            try:
                arg = spec.convert_payload(payload)
            except ValidationError as exc:
                return Outcome("failed", error=ErrorInfo.from_exception(exc, with_stack=False), retryable=False,
                               exception=exc)
            value = spec.function() if arg is None else spec.function(arg)
            text = json_text("result", value, max_bytes=None)
            return Outcome("success", result=text)
        except Exception as exc:
            return Outcome("failed", error=ErrorInfo.from_exception(exc), exception=exc)
        finally:
            self.lifecycle.leave(spec)

    def _commit(self, task_id: str, task_type: str, attempt: int, row: Row[Any],
                outcome: Outcome) -> tuple[str, Row[Any]] | None:
        """Write the outcome, fenced by ``attempt``: what was committed (the kind and the new row),
        or None when the run had lost its claim."""
        comp = self.component
        now = now_ms()
        kind, values = record_update(row, outcome, now)
        if kind == "retry":
            # Hold the next attempt back (its wake-up counts as sent) until ``settle`` has run
            # this attempt's callback: another pool thread could otherwise start the retry,
            # and report it, before Celery's signal reports this failure.
            values["enqueued_at"] = now
        new = with_retries("finish", lambda: comp.store.finish(task_id, attempt, values))
        if new is None:
            log.warning("task %s: lost its claim (lease expired or removed); outcome %s dropped", task_id, kind)
            return None
        log.info("task %s (type %s) %s", task_id, task_type, "pending for retry" if kind == "retry" else kind)
        if kind == "continue":
            if not self.publish(task_id, attempt, new.thread_id, outcome.wait or None, task_type, now):
                comp.store.set_enqueued(task_id, None)
            else:
                comp.store.set_enqueued(task_id, now)
        else:
            self.outcomes[(task_id, attempt - 1)] = (kind, new)
        return kind, new

    # -- outcomes, from Celery's signals -------------------------------------------
    def settle(self, key: tuple[str, int] | None) -> None:
        """Run the state-change callback (and ``retain_for=0`` removal) for a committed outcome.

        ``key`` is the run's message arguments: (task id, expected attempt).
        """
        entry = self.outcomes.pop(key, None) if key is not None else None
        if entry is None:
            return
        kind, row = entry
        self.component._notify(row)
        if kind == "retry":
            # Release the retry held back in ``_commit``: the sweeper publishes it when due. If
            # this process dies first, the sweeper republishes it after ``redeliver_after``.
            self.component.store.set_enqueued(row.id, None)
        self.component._finish_retention(row)


@contextmanager
def _requeued_while_unavailable(what: str) -> Iterator[None]:
    """The database stayed down through ``with_retries``: give the message back to its queue, so
    the task runs once the database answers (a run that had claimed its record is recovered
    when its lease runs out, and this message's claim then fails its fence)."""
    try:
        yield
    except StoreUnavailableError as exc:
        log.error("%s: %s; its message goes back to the queue", what, exc)
        raise Reject(str(exc), requeue=True) from exc


def _report(task_id: str, committed: tuple[str, Row[Any]] | None, outcome: Outcome) -> Any:
    """Tell Celery a committed outcome as it would see a plain task's: a return, ``Retry``, or an
    exception. A handler's own exception is raised again, so the worker's log line and Celery's
    ``task-failed`` event carry the user's traceback; ``TaskFailed`` only stands in where there
    is none (a definition's ``error()`` response, a payload that does not validate)."""
    if committed is None:
        return None
    kind, row = committed
    if kind == "retry":
        # No message: Celery then says "Retry in 3.0s: ValueError('boom')".
        raise Retry(None, exc=outcome.exception, when=(row.retry_interval or 0) / 1000)
    if kind == "failed":
        # Celery's own control exceptions would change what Celery does with the message.
        if outcome.exception is not None and not isinstance(outcome.exception, (Retry, Ignore, Reject)):
            raise outcome.exception
        raise TaskFailed(task_id, outcome.error)
    return "cancelled" if kind == "cancelled" else None


def _sent(app: Celery, send: Callable[[], None], what: str) -> bool:
    """Run a publish. Broker trouble is logged and returns False (the sweeper sends what was not
    sent); any other error, such as a transport that cannot be imported, is raised."""
    try:
        send()
        return True
    except Exception as exc:
        if not broker_trouble(app, exc):
            raise
        log.warning("could not publish %s (%s); the sweeper will publish it", what, exc)
        return False


def _log_claim_lost(row: Row[Any] | None, task_id: str, task_type: str, attempt: int) -> None:
    """Why a wake-up claimed nothing: usually a duplicate (debug), else what does not match (info)."""
    if row is None:
        log.info("task %s: no record (removed, or an id from elsewhere); wake-up dropped", task_id)
    elif row.type != task_type:
        log.info("task %s: the wake-up names type %r but the record is of type %r; dropped", task_id, task_type,
                 row.type)
    elif row.attempt != attempt:
        log.info("task %s: the wake-up is for attempt %d but the record is at attempt %d (%s); dropped", task_id,
                 attempt, row.attempt, row.status)
    else:
        log.debug("task %s: claim at attempt %d failed (a duplicate, cancelled, or not due)", task_id, attempt)


def runner_of(app: Any) -> Runner | None:
    """The runner ``install`` put on ``app``, if any."""
    runner = getattr(app, "_bgtask_runner", None)
    return runner if isinstance(runner, Runner) else None


def _runner_for(sender: Any, names: tuple[str, ...] = (RUN_TASK,)) -> Runner | None:
    """The runner of a signal about one of our tasks (``sender`` is the task)."""
    return runner_of(sender.app) if getattr(sender, "name", None) in names else None


def _request_task_id(request: Any) -> str | None:
    args = getattr(request, "args", None) or ()
    return str(args[0]) if args else getattr(request, "id", None)


@signals.task_success.connect(weak=False, dispatch_uid="celery_bgtask.success")
def _on_success(sender: Any = None, **_: Any) -> None:
    runner = _runner_for(sender)
    if runner is not None:
        runner.settle(run_key(getattr(sender.request, "args", None)))


@signals.task_retry.connect(weak=False, dispatch_uid="celery_bgtask.retry")
def _on_retry(sender: Any = None, request: Any = None, **_: Any) -> None:
    runner = _runner_for(sender)
    if runner is not None:
        runner.settle(run_key(getattr(request, "args", None)))


@signals.task_failure.connect(weak=False, dispatch_uid="celery_bgtask.failure")
def _on_failure(sender: Any = None, args: Any = None, **_: Any) -> None:
    runner = _runner_for(sender)
    if runner is not None:
        # In the pool process this settles a committed failure. In the main process
        # (a lost worker, a hard time limit) there is nothing to settle: the lease runs
        # out and the sweeper retries or fails the task.
        runner.settle(run_key(args))


@signals.task_revoked.connect(weak=False, dispatch_uid="celery_bgtask.revoked")
def _on_revoked(sender: Any = None, request: Any = None, terminated: bool = False, **_: Any) -> None:
    """``celery control revoke`` (or ``AsyncResult.revoke``) of one of our messages cancels its records.

    A ``run_many`` message (a chunk of ``create_many``) carries several records: all of them.
    """
    runner = _runner_for(sender, (RUN_TASK, RUN_MANY_TASK))
    if runner is None:
        return
    if sender.name == RUN_MANY_TASK:
        args: Sequence[Any] = getattr(request, "args", None) or ([],)
        task_ids = [task_id for task_id, _ in chunk_keys(args[0])]
    else:
        task_ids = [task_id] if (task_id := _request_task_id(request)) else []
    for task_id in task_ids:
        try:
            runner.component.cancel(task_id, include_running=terminated)
        except Exception:
            log.exception("task %s: could not record the revoke", task_id)


@signals.task_received.connect(weak=False, dispatch_uid="celery_bgtask.received")
def _on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """In the worker's main process, as each message arrives: note a wake-up's send time for the sweeper."""
    if getattr(request, "name", None) not in (RUN_TASK, RUN_MANY_TASK):
        return
    runner = runner_of(getattr(sender, "app", None))  # ``sender`` is the consumer
    if runner is not None:
        runner.backlog.note(request.request_dict)


@signals.worker_process_init.connect(weak=False, dispatch_uid="celery_bgtask.process_init")
def _on_process_init(**_: Any) -> None:
    # Connections opened before the fork belong to the parent.
    for runner in list(_runners):
        runner.component.engine.dispose(close=False)


@signals.worker_process_shutdown.connect(weak=False, dispatch_uid="celery_bgtask.process_shutdown")
def _on_process_shutdown(**_: Any) -> None:
    for runner in list(_runners):
        runner.lifecycle.shutdown_all()
        runner.component.store.close_held()


def install(app: Celery, component: BackgroundTaskComponent) -> Runner:
    """Register the run task and the worker's sweeper on ``app`` (once per app)."""
    existing = runner_of(app)
    if existing is not None:
        if existing.component is not component:
            raise BgTaskError("a BackgroundTaskComponent is already installed on this Celery app")
        return existing
    runner = Runner(app, component)
    app._bgtask_runner = runner
    _runners.add(runner)
    from .sweeper import install_sweeper

    install_sweeper(app, component)
    return runner
