"""Is a wake-up that was sent long ago, and whose task has not been claimed, still waiting in
its queue, or is it gone? The sweeper asks this before it sends the task another one.

A wake-up older than ``redeliver_after`` whose task is still unclaimed may be lost (the
worker that had taken it was killed, the broker dropped it), or it may simply be waiting
behind a long backlog. Republishing every such wake-up meant that a backlog older than
``redeliver_after`` got one duplicate message per task every ``redeliver_after``: fenced
by the claim, but each costs a delivery, and a big enough backlog grew faster than the
workers drained it. So a stale wake-up is sent again only when one of these says the
first one has left the queue:

- **FIFO**: every wake-up carries its queue and the ``enqueued_at`` stamp its record holds
  for it (``SENT_HEADER``; all the wake-ups of one ``create_many`` share one stamp), and
  the worker notes the newest stamp it has received from each queue (in its main
  process, on Celery's ``task_received``). A queue hands out messages in order, so once
  a wake-up stamped ``SEND_MARGIN`` after this one has come out, this one came out
  before it: it was delivered, and its task has not been claimed. It may be lost with a
  worker that died, or still be waiting in a live worker's prefetch buffer, behind an
  ETA, or further down a running chunk; then the new wake-up is a duplicate, which the
  claim fences off (and whichever worker is free runs the task). Priorities, a requeue,
  clocks that disagree by more than the margin between the hosts that stamp, or a stamp
  taken long before its publish can break the order too, with the same harmless result.
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
from kombu.transport.virtual import Channel as VirtualChannel

log = logging.getLogger(__name__)

#: Message header of every wake-up: ``[queue, stamp]``, the stamp (epoch ms) being the
#: ``enqueued_at`` its record holds for it.
SENT_HEADER = "bgtask_sent"
#: How much later than another a wake-up must be stamped to count as sent after it: stamps
#: are taken just before the INSERT and the publish, which may take a while for a big batch.
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
    """Messages ready in ``queue``: 0 for a queue that does not exist, None when the broker
    cannot say (any other error, or no answer), which the sweeper takes as "not empty".

    A passive ``queue_declare`` over a connection of the app's pool. On a virtual transport
    (Redis, memory) it uses the connection's default channel: a Redis channel builds its
    own connection pool, so a new channel per call would be a new TCP connection per
    sweep. Over AMQP the broker closes a channel on a missing queue, so it uses a channel
    of its own there and closes it.
    """
    try:
        with app.pool.acquire(block=True, timeout=5) as conn:
            virtual = isinstance(conn.default_channel, VirtualChannel)
            channel = conn.default_channel if virtual else conn.channel()
            try:
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
            except conn.channel_errors as exc:
                if str(getattr(exc, "reply_code", "")) == "404":
                    return 0  # no such queue (on Redis, an empty queue has no key)
                raise
            finally:
                if not virtual:
                    try:
                        channel.close()
                    except Exception:  # a channel the broker closed on the error above
                        pass
    except Exception as exc:
        log.debug("could not ask the broker how long queue %s is: %s", queue, exc)
        return None
