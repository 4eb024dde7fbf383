"""Sending wake-up messages cheaply: ``celery_bgtask.run(task_id, attempt, task_type=...)`` for
one task, ``celery_bgtask.run_many(items, task_type=...)`` for a chunk of ``create_many``.

``Task.apply_async`` spends most of its time in Python, not on the wire: routing,
``saferepr`` of the arguments, an ``AsyncResult``, and re-declaring the queue on every
publish (kombu copies and rebinds the ``Queue`` each time, even when its declaration is
cached). A wake-up needs none of that, so ``WakeupSender`` builds the message with
Celery's own ``app.amqp.create_task_message`` and sends it with ``send_task_message``
(which still fires ``before_task_publish`` / ``after_task_publish``), declaring each
queue only on its first publish in this process. With ``task_always_eager`` it falls
back to ``apply_async`` so the task runs in place as Celery users expect.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from itertools import groupby, islice
from typing import Any, NamedTuple

from celery import Celery
from kombu.exceptions import OperationalError

from .backlog import SENT_HEADER

RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}

class Wakeup(NamedTuple):
    """One wake-up message to send. ``enqueued_at`` is the stamp the record holds for it,
    which the message carries (``backlog``)."""

    task_id: str
    attempt: int
    queue: str
    task_type: str | None
    enqueued_at: int


def broker_trouble(app: Celery, exc: BaseException) -> bool:
    """Whether a publish failed because of the broker (unreachable, timed out, connection or
    channel lost), which the sweeper can make up for later, rather than because of a bug or a
    broken install (a transport that cannot be imported), which must reach the caller.

    Broker trouble is an ``OSError`` (``TimeoutError`` and ``ConnectionError`` included),
    kombu's ``OperationalError`` (what its retries end in), or one of the transport's own
    connection or channel errors.
    """
    if isinstance(exc, (OSError, OperationalError)):
        return True
    try:
        with app.connection_for_write() as conn:
            errors = (*conn.connection_errors, *conn.channel_errors)
    except Exception:  # the transport itself cannot be loaded: not the broker's fault
        return False
    return isinstance(exc, errors)


def chunked(wakeups: Sequence[Wakeup], size: int) -> Iterator[list[Wakeup]]:
    """Consecutive wake-ups of one queue, type and stamp, at most ``size`` at a time."""
    for _, same in groupby(wakeups, key=lambda w: (w.queue, w.task_type, w.enqueued_at)):
        while chunk := list(islice(same, size)):
            yield chunk


class WakeupSender:
    def __init__(self, app: Celery, task: Any, many_task: Any) -> None:
        self.app = app
        self.task = task
        self.many_task = many_task
        self._declared: set[str] = set()

    def _batched(self, producer: Any) -> bool:
        return bool(getattr(producer, "supports_batch_publish", False)) and hasattr(producer, "batch")

    def _send(self, producer: Any, wakeup: Wakeup, countdown: float | None, retry: bool = True) -> None:
        task_id, attempt, queue, task_type, stamp = wakeup
        self._message(producer, self.task, task_id, (task_id, attempt), task_type, queue, stamp, countdown, retry,
                      repr((task_id, attempt)))

    def _send_chunk(self, producer: Any, chunk: Sequence[Wakeup], retry: bool) -> None:
        """One ``run_many`` message for the chunk; a chunk of one is an ordinary wake-up."""
        if len(chunk) == 1:
            self._send(producer, chunk[0], None, retry)
            return
        items = [[w.task_id, w.attempt] for w in chunk]
        queue, task_type, stamp = chunk[0].queue, chunk[0].task_type, chunk[0].enqueued_at
        # Celery's time limits are per message: a chunk of n tasks gets n times a task's.
        limits = {name: per_task * len(items) for name in ("time_limit", "soft_time_limit")
                  if (per_task := getattr(self.task, name, None))}
        # Its own message id: a record's id stays the id of that record's single wake-ups.
        self._message(producer, self.many_task, uuid.uuid4().hex, (items,), task_type, queue, stamp, None, retry,
                      f"([{len(items)} tasks: {items[0][0]} ... {items[-1][0]}],)", limits)

    def _message(self, producer: Any, task: Any, message_id: str, args: tuple[Any, ...], task_type: str | None,
                 queue: str, stamp: int, countdown: float | None, retry: bool, argsrepr: str,
                 limits: dict[str, float] | None = None) -> None:
        kwargs = {"task_type": task_type} if task_type else {}
        if self.app.conf.task_always_eager:
            task.apply_async(args=args, kwargs=kwargs or None, task_id=message_id, queue=queue, countdown=countdown)
            return
        amqp = self.app.amqp
        message = amqp.create_task_message(
            message_id, task.name, args, kwargs, countdown=countdown, ignore_result=True,
            argsrepr=argsrepr, kwargsrepr=repr(kwargs), **(limits or {}),
        )
        message.headers[SENT_HEADER] = [queue, stamp]  # see ``backlog``
        # ``declare=None`` makes Celery declare the queue (an idempotent broker call, cached
        # per channel but costly in Python); after the first publish to a queue it exists.
        first = queue not in self._declared
        amqp.send_task_message(
            producer, task.name, message, queue=queue, serializer="json", retry=retry,
            retry_policy=RETRY_POLICY, declare=None if first else [],
        )
        if first:
            self._declared.add(queue)

    def send(self, wakeup: Wakeup, countdown: float | None = None) -> None:
        with self.app.producer_or_acquire() as producer:
            self._send(producer, wakeup, countdown)

    def send_many(self, wakeups: Sequence[Wakeup], chunk_size: int = 1) -> None:
        """All over one producer, in one kombu publish batch (one Redis pipeline; kombu >= 5.7).

        ``chunk_size`` > 1 puts up to that many wake-ups of one queue and type into one
        ``run_many`` message. In a batch nothing goes out until the flush, so a per-message
        retry has nothing to retry: a failed flush raises, and the caller leaves the records
        to the sweeper. A single message is sent on its own, with the retries of ``send``.
        """
        chunks = list(chunked(wakeups, chunk_size))
        with self.app.producer_or_acquire() as producer:
            batched = len(chunks) > 1 and self._batched(producer)
            with producer.batch() if batched else nullcontext():
                for chunk in chunks:
                    self._send_chunk(producer, chunk, retry=not batched)
