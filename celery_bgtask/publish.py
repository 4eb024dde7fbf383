"""Sending wake-up messages (``celery_bgtask.run(task_id, attempt, task_type=...)``) cheaply.

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

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from celery import Celery

RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}

#: ``(task_id, attempt, queue, task_type)``
Wakeup = tuple[str, int, str, str | None]


class WakeupSender:
    def __init__(self, app: Celery, task: Any) -> None:
        self.app = app
        self.task = task
        self._declared: set[str] = set()

    def _batched(self, producer: Any) -> bool:
        return bool(getattr(producer, "supports_batch_publish", False)) and hasattr(producer, "batch")

    def _send(self, producer: Any, wakeup: Wakeup, countdown: float | None, retry: bool = True) -> None:
        task_id, attempt, queue, task_type = wakeup
        if self.app.conf.task_always_eager:
            self.task.apply_async(args=(task_id, attempt), kwargs={"task_type": task_type} if task_type else None,
                                  task_id=task_id, queue=queue, countdown=countdown)
            return
        args = (task_id, attempt)
        kwargs = {"task_type": task_type} if task_type else {}
        amqp = self.app.amqp
        message = amqp.create_task_message(
            task_id, self.task.name, args, kwargs, countdown=countdown, ignore_result=True,
            argsrepr=repr(args), kwargsrepr=repr(kwargs),
        )
        # ``declare=None`` makes Celery declare the queue (an idempotent broker call, cached
        # per channel but costly in Python); after the first publish to a queue it exists.
        first = queue not in self._declared
        amqp.send_task_message(
            producer, self.task.name, message, queue=queue, serializer="json", retry=retry,
            retry_policy=RETRY_POLICY, declare=None if first else [],
        )
        if first:
            self._declared.add(queue)

    def send(self, wakeup: Wakeup, countdown: float | None = None) -> None:
        with self.app.producer_or_acquire() as producer:
            self._send(producer, wakeup, countdown)

    def send_many(self, wakeups: Sequence[Wakeup]) -> None:
        """All over one producer, in one kombu publish batch (one Redis pipeline; kombu >= 5.7).

        In a batch nothing goes out until the flush, so a per-message retry has nothing to
        retry: a failed flush raises, and the caller leaves the records to the sweeper. A
        single wake-up is sent on its own, with the retries of ``send``.
        """
        if len(wakeups) == 1:
            self.send(wakeups[0])
            return
        with self.app.producer_or_acquire() as producer:
            batched = self._batched(producer)
            with producer.batch() if batched else nullcontext():
                for wakeup in wakeups:
                    self._send(producer, wakeup, None, retry=not batched)
