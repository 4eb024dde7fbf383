"""Retention under load: the cleanup keeps going while its batches come back full, within a
budget per pass, and when the budget runs out it goes on at the next poll."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select

from celery_bgtask.celery.sweeper import Cleanup, Sweeper
from celery_bgtask.store.schema import tasks
from celery_bgtask.timeutil import now_ms
from tests.helpers import count_records, insert_finished, wait_for

c = tasks.c


def test_one_pass_keeps_deleting_while_batches_come_back_full(make_component: Any) -> None:
    """More than the old cap of 20 batches a pass: a pass with time to spare deletes them all."""
    bg = make_component()
    now = now_ms()
    insert_finished(bg, 1500, now - 100_000)
    kept = insert_finished(bg, 10, now + 60_000) + insert_finished(bg, 10, None)
    assert Sweeper(bg, batch=50, cleanup_budget=math.inf).cleanup(now) == Cleanup(1500, True)
    with bg.engine.connect() as conn:
        assert set(conn.execute(select(c.id)).scalars()) == set(kept)


def test_a_pass_cut_short_by_its_budget_goes_on_at_the_next_poll(make_component: Any) -> None:
    """With no time to spare a pass deletes one batch, and the next sweep, one poll later, goes on
    instead of waiting for ``cleanup_interval``; a pass that got to the end waits for it."""
    bg = make_component(cleanup_interval=3_600_000)
    insert_finished(bg, 120, now_ms() - 100_000)
    sweeper = Sweeper(bg, batch=50, cleanup_budget=0)
    left = []
    for _ in range(3):
        sweeper.sweep()
        left.append(count_records(bg.engine))
    assert left == [70, 20, 0]
    insert_finished(bg, 5, now_ms() - 100_000)
    sweeper.sweep()
    assert count_records(bg.engine) == 5  # the last pass finished: the next one is an hour away


def test_the_worker_clears_a_backlog_bigger_than_the_old_cap_before_cleanup_interval(
        make_component: Any, worker: Any) -> None:
    """The worker's own sweeper with the default batch and budget: 12,000 expired records (the old
    rule deleted 10,000 and then waited ``cleanup_interval``, here an hour) all go."""
    bg = make_component(cleanup_interval=3_600_000)
    insert_finished(bg, 12_000, now_ms() - 100_000)
    bg.register_handler("done", lambda payload: None)
    with worker(bg.app):
        wait_for(lambda: count_records(bg.engine) == 0, timeout=90, what="the worker's cleanup to delete the backlog")
