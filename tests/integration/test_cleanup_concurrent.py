"""Several workers' sweepers cleaning at once, on PostgreSQL and MariaDB: each takes rows none of
the others holds (``FOR UPDATE SKIP LOCKED``), so none deletes a row another is deleting or
waits for it, and none holds up producers' inserts."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, select, text

from celery_bgtask.celery.sweeper import Cleanup, Sweeper
from celery_bgtask.store.schema import tasks
from celery_bgtask.timeutil import now_ms
from tests.helpers import count_records, insert_finished, wait_for

c = tasks.c


pytestmark = pytest.mark.backends("postgres", "mysql")


@pytest.fixture
def other_engine(database_url: str) -> Iterator[Engine]:
    """An engine of its own on the test's database: another worker's connections."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def _pause_after_first_select(engine: Engine) -> tuple[threading.Event, threading.Event]:
    """Hold the first transaction of this engine's cleanup just after it read (and locked) its batch,
    until the second event is set; the first is set once it is held."""
    holding, release = threading.Event(), threading.Event()

    def hold(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "date_retain_until <" in sql and not holding.is_set():
            holding.set()
            release.wait(60)

    event.listen(engine, "after_cursor_execute", hold)
    return holding, release


def _in_thread(work: Any) -> tuple[threading.Thread, list[Any]]:
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    return thread, done


def test_a_sweeper_skips_the_records_another_is_deleting(make_component: Any) -> None:
    """Another worker's sweeper holds a batch of the 300 oldest expired records in its open
    transaction: this one deletes the other 700 meanwhile, without waiting for it."""
    other, bg = make_component(), make_component()
    now = now_ms()
    insert_finished(bg, 1000, now - 100_000)
    holding, release = _pause_after_first_select(other.engine)
    held, held_pass = _in_thread(lambda: Sweeper(other, batch=300, cleanup_budget=0).cleanup(now))
    try:
        wait_for(holding.is_set, what="the other sweeper to take its batch")
        run, passes = _in_thread(lambda: Sweeper(bg, batch=100, cleanup_budget=math.inf).cleanup(now))
        wait_for(lambda: not run.is_alive(), timeout=30, what="the cleanup to finish while the batch is held")
        assert count_records(bg.engine) == 300
    finally:
        release.set()  # lets the other sweeper (and a cleanup that waits for it) go on
        held.join(60)
    assert passes == [Cleanup(700, True)] and held_pass == [Cleanup(300, False)]
    assert count_records(bg.engine) == 0


def _deleted_ids(engine: Engine) -> list[str]:
    """The record ids in every DELETE this engine sends from now on."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        if sql.lstrip().upper().startswith("DELETE"):
            values = params.values() if isinstance(params, dict) else params
            seen.extend(v for v in values if isinstance(v, str) and len(v) == 32)

    event.listen(engine, "before_cursor_execute", note)
    return seen


def test_two_sweepers_at_once_delete_each_record_once(make_component: Any) -> None:
    """Two workers' sweepers (engines of their own) clean the same backlog at the same moment:
    no error, no deadlock, and each record is in the DELETE of exactly one of them."""
    first = make_component()
    second = make_component()
    now = now_ms()
    ids = insert_finished(first, 4000, now - 100_000)
    sent = {bg: _deleted_ids(bg.engine) for bg in (first, second)}
    start = threading.Barrier(2)
    results: dict[int, Any] = {}

    def sweep(n: int, bg: Any) -> None:
        sweeper = Sweeper(bg, batch=100, cleanup_budget=math.inf)
        start.wait(10)
        try:
            results[n] = sweeper.cleanup(now)
        except Exception as exc:  # reported by the assertion below
            results[n] = exc

    threads = [threading.Thread(target=sweep, args=(n, bg), daemon=True) for n, bg in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(isinstance(r, Cleanup) and r.finished for r in results.values()) and len(results) == 2, results
    assert sum(r.deleted for r in results.values()) == 4000
    one, two = (set(sent[bg]) for bg in (first, second))
    assert not one & two and one | two == set(ids)
    assert count_records(first.engine) == 0


def test_a_cleanup_holding_its_batch_holds_up_no_insert(make_component: Any, other_engine: Engine) -> None:
    """While a sweeper's transaction holds its batch, a producer inserts records whose retention
    ends inside the range it scanned, before it and after it: on MariaDB the scan runs at READ
    COMMITTED and takes no gap locks (a lock wait would fail the insert after 5 s)."""
    bg = make_component()
    now = now_ms()
    insert_finished(bg, 50, now - 100_000)
    holding, release = _pause_after_first_select(bg.engine)
    run, passes = _in_thread(lambda: Sweeper(bg, batch=10, cleanup_budget=math.inf).cleanup(now))
    try:
        wait_for(holding.is_set, what="the cleanup to lock its first batch")
        with other_engine.begin() as conn:
            conn.execute(text("SET lock_timeout = '5s'" if other_engine.dialect.name == "postgresql"
                              else "SET SESSION innodb_lock_wait_timeout = 5"))
            for n, until in enumerate((None, now - 200_000, now - 100_000 + 5, now - 100_000 + 25, now + 60_000)):
                conn.execute(tasks.insert().values(id=f"{n:032x}", type="new", thread_id="q", status="success",
                                                   date_created=now, date_modified=now, retain_for=1,
                                                   date_retain_until=until))
    finally:
        release.set()
        run.join(60)
    assert passes == [Cleanup(53, True)]  # the 50, and the 3 new ones already past retention
    with bg.engine.connect() as conn:
        assert sorted(conn.execute(select(c.id)).scalars()) == [f"{n:032x}" for n in (0, 4)]
