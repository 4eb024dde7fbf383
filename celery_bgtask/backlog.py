"""Is a wake-up that was sent long ago, and whose task has not been claimed, still waiting in
its queue, or is it gone? The sweeper asks this before it sends the task another one.

A wake-up older than ``redeliver_after`` whose task is still unclaimed may be lost (the
worker that had taken it was killed, the broker dropped it), or it may simply be waiting
behind a long backlog. Republishing every such wake-up meant that a backlog older than
``redeliver_after`` got one duplicate message per task every ``redeliver_after``: fenced
by the claim, but each costs a delivery, and a big enough backlog grew faster than the
workers drained it. So a stale wake-up is sent again only when one of these says the
first one has left the queue:

- **FIFO**: every wake-up carries the time it was sent and its queue (``SENT_HEADER``),
  and the worker notes the newest one it has received from each queue (in its main
  process, on Celery's ``task_received``). A queue hands out messages in order, so once
  a wake-up sent ``SEND_MARGIN`` after this one has come out, this one came out before
  it: it was delivered, and its task was never claimed. (Priorities or a requeue can
  break the order; then the answer is a needless duplicate, which the claim fences off.)
- **the queue is empty**: asked of the broker (messages ready, not counting those
  delivered and not yet acked);
- **it is very old**: ``FORCE_AFTER_FACTOR`` times ``redeliver_after``, whatever the queue
  looks like, so a lost wake-up in a queue that never empties and whose other traffic
  carries no header (plain Celery tasks) is still recovered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery

log = logging.getLogger(__name__)

#: Message header of every wake-up: ``[queue, sent at, epoch ms]``.
SENT_HEADER = "bgtask_sent"
#: A record's ``enqueued_at`` is stamped just before its wake-up is sent; the send (with its
#: retries) may come this much later.
SEND_MARGIN = 5_000
#: A stale wake-up this many times ``redeliver_after`` old is sent again in any case.
FORCE_AFTER_FACTOR = 12


class Backlog:
    """What this process has seen of its queues: the newest wake-up received from each."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.received: dict[str, int] = {}

    def note(self, headers: Any) -> None:
        """Record a received wake-up's header (anything malformed is ignored)."""
        value = headers.get(SENT_HEADER) if isinstance(headers, dict) else None
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
                and isinstance(value[1], int)):
            return
        queue, sent = value
        if sent > self.received.get(queue, -1):
            self.received[queue] = sent

    def judge(self, now: int, redeliver_after: int) -> Callable[[str, int], bool]:
        """A test ``gone(queue, enqueued_at)`` for one sweep; the broker is asked at most once a queue."""
        depth: dict[str, int | None] = {}
        force_before = now - FORCE_AFTER_FACTOR * redeliver_after

        def gone(queue: str, enqueued_at: int) -> bool:
            if enqueued_at < force_before:
                return True
            if self.received.get(queue, -1) > enqueued_at + SEND_MARGIN:
                return True
            if queue not in depth:
                depth[queue] = queue_depth(self.app, queue)
            return depth[queue] == 0

        return gone


def queue_depth(app: Celery, queue: str) -> int | None:
    """Messages ready in ``queue``, or None when the broker cannot say.

    A passive ``queue_declare`` on a channel of its own, over a connection of the app's
    pool (not a new connection every sweep); a broker that closes the channel for a
    missing queue leaves the connection usable.
    """
    try:
        with app.pool.acquire(block=True, timeout=5) as conn:
            channel = conn.channel()
            try:
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
            except conn.channel_errors:
                return 0  # no such queue (on Redis, an empty queue has no key)
            finally:
                try:
                    channel.close()
                except Exception:  # a channel the broker closed on the error above
                    pass
    except Exception as exc:
        log.debug("could not ask the broker how long queue %s is: %s", queue, exc)
        return None
