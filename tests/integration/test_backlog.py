"""The sweeper sends a stale wake-up again only when it has left its queue (``backlog``):
a backlog older than ``redeliver_after`` gets no duplicates, a lost wake-up is still
recovered. On the embedded default (memory broker) and on Redis."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from kombu import Queue

from celery_bgtask import TaskStatus
from celery_bgtask.celery.backlog import FORCE_AFTER_FACTOR, SENT_HEADER, queue_depth
from celery_bgtask.celery.sweeper import Sweeper
from celery_bgtask.ids import parse_task_id
from celery_bgtask.timeutil import now_ms
from tests.helpers import require_service, set_fields, status_of, take_messages, wait_for

REDELIVER = 3_000


@pytest.fixture
def rabbitmq_app() -> Iterator[Celery]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    app = Celery("depth", broker="amqp://guest:guest@127.0.0.1:5672//", set_as_current=False)
    yield app
    app.close()


def _enqueued_at(bg: Any, urn: str) -> int | None:
    row = bg.store.get(parse_task_id(urn))
    return None if row is None else row.enqueued_at


def test_stale_wakeups_still_in_their_queue_are_not_sent_again(make_component: Any, queue_name: str) -> None:
    bg = make_component(redeliver_after=REDELIVER)
    bg.register_handler("t", lambda payload: payload)
    urns = bg.create_many("t", [{"n": n} for n in range(5)])
    now = now_ms()
    for urn in urns:
        set_fields(bg, urn, enqueued_at=now - 2 * REDELIVER)  # stale, but its message waits in the queue
    forced = bg.create("t", {"n": "forced"})
    set_fields(bg, forced, enqueued_at=now - FORCE_AFTER_FACTOR * REDELIVER - 1000)

    published = Sweeper(bg).publish_due(now_ms())

    assert published == 1  # only the one old enough to be sent whatever the queue looks like
    messages = take_messages(bg.app, queue_name)
    ids = [args[0] for _, args, _ in messages]
    assert sorted(ids) == sorted([parse_task_id(u) for u in urns] + [parse_task_id(forced)] * 2)
    assert [_enqueued_at(bg, u) for u in urns] == [now - 2 * REDELIVER] * 5
    assert all(headers[SENT_HEADER][0] == queue_name for headers, _, _ in messages)


def test_a_stale_wakeup_is_sent_again_once_its_queue_is_empty(make_component: Any, queue_name: str) -> None:
    bg = make_component(redeliver_after=REDELIVER)
    bg.register_handler("t", lambda payload: payload)
    urns = bg.create_many("t", [{"n": n} for n in range(3)])
    assert len(take_messages(bg.app, queue_name)) == 3  # the messages are lost
    assert queue_depth(bg.app, queue_name) == 0
    now = now_ms()
    for urn in urns:
        set_fields(bg, urn, enqueued_at=now - 2 * REDELIVER)

    assert Sweeper(bg).publish_due(now_ms()) == 3

    again = take_messages(bg.app, queue_name)
    assert sorted(args[0] for _, args, _ in again) == sorted(parse_task_id(u) for u in urns)
    assert all(_enqueued_at(bg, u) != now - 2 * REDELIVER for u in urns)


def test_a_lost_wakeup_is_recovered_while_its_queue_stays_busy(
    make_component: Any, celery_app_factory: Any, worker: Any, queue_name: str
) -> None:
    """The worker has received a wake-up stamped after the lost one, so (FIFO) the lost one
    had left the queue: it is sent again although the queue is not empty."""
    release = threading.Event()
    redeliver = 10_000  # the forced bound (12x) stays two minutes away: only FIFO can act in time
    bg = make_component(celery_app_factory(worker_prefetch_multiplier=1), redeliver_after=redeliver,
                        default_retain_for=600_000)
    bg.register_handler("block", lambda payload: release.wait(30))
    bg.register_handler("quick", lambda payload: "done")
    lost = bg.create("quick", {"lost": True})
    assert len(take_messages(bg.app, queue_name)) == 1
    aged = now_ms() - 2 * redeliver  # stale, and older than the stamp margin
    set_fields(bg, lost, enqueued_at=aged)
    blockers = bg.create_many("block", [{"n": n} for n in range(3)])

    with worker(bg.app, concurrency=1):
        try:
            wait_for(lambda: status_of(bg, blockers[0]) is TaskStatus.PROCESSING, what="the first blocker")
            # One message at a time and that one running: the other two wait in the queue.
            assert [status_of(bg, u) for u in blockers[1:]] == [TaskStatus.PENDING] * 2
            assert (queue_depth(bg.app, queue_name) or 0) >= 1
            wait_for(lambda: _enqueued_at(bg, lost) != aged, timeout=15, what="the lost wake-up to be sent again")
        finally:
            release.set()
        wait_for(lambda: status_of(bg, lost) is TaskStatus.SUCCESS, what="the lost task to run")
        wait_for(lambda: all(status_of(bg, u) is TaskStatus.SUCCESS for u in blockers), what="the blockers")


def test_each_wakeup_carries_the_stamp_its_record_holds(make_component: Any, queue_name: str) -> None:
    """The stamp in the header is the record's ``enqueued_at``, one stamp for a whole batch, so
    the wake-ups of one slow batch never make each other look gone."""
    bg = make_component(redeliver_after=REDELIVER)
    bg.register_handler("t", lambda payload: payload)
    one = bg.create("t", {"n": "one"})
    batch = bg.create_many("t", [{"n": n} for n in range(4)], chunk_size=2)
    messages = take_messages(bg.app, queue_name)
    assert len(messages) == 3  # one, and two chunks
    stamps = {urn: _enqueued_at(bg, urn) for urn in [one, *batch]}
    assert len({stamps[u] for u in batch}) == 1
    assert [headers[SENT_HEADER] for headers, _, _ in messages] == [
        [queue_name, stamps[one]], [queue_name, stamps[batch[0]]], [queue_name, stamps[batch[0]]]]

    set_fields(bg, one, enqueued_at=now_ms() - 2 * REDELIVER)
    assert Sweeper(bg).publish_due(now_ms()) == 1  # the queue is empty now
    [(headers, args, _)] = take_messages(bg.app, queue_name)
    assert args[0] == parse_task_id(one) and headers[SENT_HEADER] == [queue_name, _enqueued_at(bg, one)]


def test_queue_depth_is_unknown_when_the_broker_does_not_answer() -> None:
    app = Celery("nobroker", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.broker_connection_timeout = 0.5
    try:
        assert queue_depth(app, "anything") is None
    finally:
        app.close()


def test_queue_depth_on_rabbitmq(rabbitmq_app: Any) -> None:
    """AMQP answers a passive declare with the count of ready messages, and closes the channel
    for a queue that does not exist: counted as empty, and the pooled connection still works."""
    queue = f"bgtask-depth-{uuid.uuid4().hex[:8]}"
    assert queue_depth(rabbitmq_app, queue) == 0  # no such queue
    with rabbitmq_app.connection_for_write() as conn:
        declared = Queue(queue, routing_key=queue, auto_delete=True, durable=False)
        with conn.Producer() as producer:
            for n in range(3):
                producer.publish({"n": n}, routing_key=queue, declare=[declared], serializer="json")
        try:
            assert wait_for(lambda: queue_depth(rabbitmq_app, queue) == 3, what="three ready messages")
            assert queue_depth(rabbitmq_app, f"{queue}-missing") == 0
            assert queue_depth(rabbitmq_app, queue) == 3
        finally:
            declared.bind(conn.default_channel).delete()
