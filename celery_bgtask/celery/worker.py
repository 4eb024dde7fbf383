"""The Celery side: one Celery task runs every task type.

A message carries ``(task_id, expected_attempt)`` and the type (for routing); one that does
not have that form is logged and dropped (``messages``). The worker:

1. checks that this process has a handler for the type (else it leaves the record
   pending, and a worker that has the handler picks it up through the sweeper);
2. takes a concurrency slot when the type has ``max_worker_count``;
3. claims the record (``core.state.claim``: pending/between iterations, due, of the message's
   type, at the expected attempt -> processing under a lease). A duplicate message, a
   cancelled or removed task, or a stale wake-up fails the claim and does nothing;
4. runs the handler and commits the outcome, fenced by the attempt number; the commit tells
   the event bus, whose subscribers (state-change callbacks, retention) run right after it,
   in this process, before the message is acked;
5. tells Celery the outcome the same way Celery would see it (``report``).

A chunk of ``create_many(..., chunk_size=n)`` comes as one ``run_many`` message carrying
several ``(task_id, expected_attempt)`` pairs; ``Runner.execute_many`` runs each as above,
one after another, through the same path.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from pydantic import ValidationError

from ..core import state
from ..core.outcome import Outcome
from ..core.record import TaskRecord
from ..handlers import HandlerSpec
from ..models import ErrorInfo
from ..resilience import with_retries
from ..timeutil import now_ms
from ..validation import json_text
from .backlog import Backlog
from .heartbeat import Heartbeat
from .host import Host
from .lifecycle import ProcessLifecycle
from .messages import Key, parse_run, parse_run_many
from .publish import Wakeup, WakeupSender, broker_trouble
from .report import TaskFailed, log_claim_lost, report, requeued_while_unavailable

log = logging.getLogger(__name__)

RUN_TASK = "celery_bgtask.run"
#: A chunk of ``create_many(..., chunk_size=n)``: ``run_many([[task_id, attempt], ...], task_type=...)``.
RUN_MANY_TASK = "celery_bgtask.run_many"
#: How a committed outcome is told in the log (``succeed`` -> "success").
_SAID = {"succeed": "success", "fail": "failed", "cancel": "cancelled", "retry": "pending for retry"}
#: A run's end and what it committed: (the transition's name, the new record), or None
#: when the claim was lost meanwhile; and the outcome.
Ran = tuple[tuple[str, TaskRecord] | None, Outcome]


class Runner:
    """Owns the Celery tasks and the per-process execution state of one component."""

    def __init__(self, app: Celery, host: Host) -> None:
        self.app = app
        self.host = host
        self.lifecycle = ProcessLifecycle()
        self.heartbeat = Heartbeat(host)
        #: In a worker's main process: the newest wake-up received from each queue (for the sweeper).
        self.backlog = Backlog(app)
        self.hostname = f"{socket.gethostname()}:{os.getpid()}"

        runner = self
        # Acked only once the outcome is committed; a lost pool process requeues the message.
        options: dict[str, Any] = {"shared": False, "bind": True, "acks_late": True, "reject_on_worker_lost": True,
                                   "ignore_result": True, "serializer": "json",
                                   "Strategy": "celery_bgtask.celery.messages:guarded_strategy"}

        # ``throws``: an expected outcome, already recorded: Celery logs it without a traceback.
        # Any arguments are taken, and checked by ``messages``: a message crafted onto the broker
        # that is not what ``publish`` sends is logged and dropped, not a TypeError per delivery.
        @app.task(name=RUN_TASK, throws=(TaskFailed,), **options)
        def run(task: Any, *args: Any, **kwargs: Any) -> Any:
            parsed = parse_run(args, kwargs)
            if parsed is None:
                return None
            (task_id, attempt), task_type = parsed
            with requeued_while_unavailable(f"task {task_id}"):
                return runner.execute(task, task_id, attempt, task_type)

        @app.task(name=RUN_MANY_TASK, **options)
        def run_many(task: Any, *args: Any, **kwargs: Any) -> None:
            parsed = parse_run_many(args, kwargs)
            if parsed is None:
                return
            keys, task_type = parsed
            with requeued_while_unavailable("a chunk of tasks"):
                runner.execute_many(task, keys, task_type)

        self.task = run
        self.many_task = run_many
        self.sender = WakeupSender(app, run, run_many)

    # -- producing ----------------------------------------------------------------
    def publish_many(self, wakeups: Sequence[Wakeup], chunk_size: int = 1, countdown: float | None = None) -> bool:
        """Publish wake-ups over one producer, as one batch (see ``WakeupSender.send_many``).

        Returns False if the broker failed and any may not have been sent: the caller clears
        ``enqueued_at`` of all of them and the sweeper publishes them again (a duplicate
        wake-up is harmless: its claim fails the attempt fence). Any other error is raised.
        ``countdown`` (one wake-up only): the broker holds it back that many seconds.
        """
        if countdown:
            [wakeup] = wakeups
            return _sent(self.app, lambda: self.sender.send(wakeup, countdown), f"task {wakeup.task_id}")
        return _sent(self.app, lambda: self.sender.send_many(wakeups, chunk_size), f"{len(wakeups)} tasks")

    # -- running ------------------------------------------------------------------
    def execute(self, task: Any, task_id: str, attempt: int, task_type: str | None) -> Any:
        """Run one wake-up and tell Celery the committed outcome the way Celery would see it."""
        ran = self._execute(task, task_id, attempt, task_type)
        return None if ran is None else report(task_id, *ran)

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
        for task_id, attempt in keys:
            self._execute(task, task_id, attempt, task_type)

    def _execute(self, task: Any, task_id: str, attempt: int, task_type: str | None) -> Ran | None:
        """Claim, run and commit one task, or None when nothing ran."""
        host, store = self.host, self.host.store
        with_retries("schema", host.ensure_ready)
        if task_type is None:
            found = store.get(task_id)
            if found is None:
                log.info("task %s: no record (removed, or an id from elsewhere); nothing to run", task_id)
                return None
            task_type = found.type
        spec = host.handler(task_type)
        if spec is None:
            log.warning("task %s: no handler for type %r in this worker; it stays pending", task_id, task_type)
            store.apply(task_id, state.release_wakeup(task_type, attempt))
            return None
        capped = spec.options.max_worker_count
        now = now_ms()
        lease_until = now + host.settings.lease
        if capped is not None:
            slot = with_retries("slot", lambda: store.acquire_slot(task_type, capped, task_id, now, lease_until))
            if slot is None:
                log.info("task %s (type %s): %d already running; it waits as pending", task_id, task_type, capped)
                store.apply(task_id, state.release_wakeup(task_type, attempt))
                return None
        worker = f"{getattr(task.request, 'hostname', None) or self.hostname}"
        claim = state.claim(task_type, attempt, now, lease_until, worker)
        record = with_retries("claim", lambda: host.commit(task_id, claim))
        if record is None:
            if capped is not None:
                store.release_slot(task_type, task_id)
            log_claim_lost(store.get(task_id), task_id, task_type, attempt)
            return None
        self.heartbeat.add(task_id, record.attempt)
        try:
            log.info("task %s (type %s) processing, attempt %d", task_id, task_type, record.attempt)
            outcome = self._run(spec, record, task)
            return self._commit(record, outcome), outcome
        finally:
            self.heartbeat.remove(task_id)
            if capped is not None:
                store.release_slot(task_type, task_id)

    def _run(self, spec: HandlerSpec, record: TaskRecord, task: Any) -> Outcome:
        if spec.execute is not None:
            return spec.execute(record, task)
        self.lifecycle.enter(spec)
        try:
            payload = None if record.payload is None else json.loads(record.payload)
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

    def _commit(self, record: TaskRecord, outcome: Outcome) -> tuple[str, TaskRecord] | None:
        """Write the outcome, fenced by the attempt: what was committed, or None when the run had
        lost its claim. The commit runs the subscribers (callbacks) before this returns."""
        host, task_id = self.host, record.id
        now = now_ms()
        # A retry's next attempt is held back (its wake-up counts as sent) until this attempt's
        # callbacks have run: a sweeper could otherwise start it, and report it, first.
        finish = state.finish(record, outcome, now, hold_retry=True)
        new = with_retries("finish", lambda: host.commit(task_id, finish))
        if new is None:
            log.warning("task %s: lost its claim (lease expired or removed); outcome %s dropped", task_id,
                        _SAID.get(finish.name, finish.name))
            return None
        log.info("task %s (type %s) %s", task_id, record.type, _SAID.get(finish.name, finish.name))
        if finish.name == "continue":
            wakeup = Wakeup(task_id, record.attempt, new.thread_id, record.type, now)
            sent = self.publish_many([wakeup], countdown=outcome.wait or None)
            host.store.set_enqueued([task_id], now if sent else None)
        elif finish.name == "retry":
            # Released: the sweeper publishes it when due. If this process dies first, the
            # sweeper republishes it after ``redeliver_after``.
            host.store.set_enqueued([task_id], None)
        return finish.name, new


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
