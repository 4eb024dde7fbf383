"""The psycopg fast path of claim/finish behaves as the SQLAlchemy path would."""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from celery_bgtask.core.record import TaskRecord
from celery_bgtask.ids import parse_task_id
from celery_bgtask.resilience import with_retries
from celery_bgtask.store.engine import make_engine
from celery_bgtask.timeutil import now_ms
from tests.helpers import claim, finish, wait_for

pytestmark = pytest.mark.backends("postgres")


def test_claim_and_finish_return_rows_and_wrap_errors(make_component: Any) -> None:
    bg = make_component()
    assert bg.store._fast is not None  # psycopg 3 on PostgreSQL: the fast path is the one under test
    task_id = parse_task_id(bg.create("t", {"a": 1}, retain_for=-1))
    now = now_ms()
    assert claim(bg, task_id, "other", 0, now, now + 60_000, "w1") is None  # fenced: not its type
    row = claim(bg, task_id, "t", 0, now, now + 60_000, "w1")
    assert isinstance(row, TaskRecord) and row.status == "processing" and row.attempt == 1
    assert row.payload == '{"a":1}' and row.worker == "w1"
    assert claim(bg, task_id, "t", 0, now, now + 60_000, "w2") is None  # fenced: the attempt moved on
    with pytest.raises(DBAPIError):
        finish(bg, task_id, 1, {"status": "x" * 100})  # longer than the column: the server refuses
    done = finish(bg, task_id, 1, {"status": "success", "lease_until": None, "result": "1"})
    assert done is not None and done.status == "success"  # the held connection survived the error
    assert finish(bg, task_id, 1, {"status": "failed"}) is None
    task = bg.get(task_id)
    assert task is not None and task.result == 1


def _sessions(bg: Any) -> int:
    """Server sessions open on the test database, other than the one asking."""
    with bg.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalar_one())


def _claim_and_finish(bg: Any, task_id: str) -> TaskRecord | None:
    now = now_ms()
    row = claim(bg, task_id, "t", 0, now, now + 60_000, "w")
    assert row is not None and row.status == "processing"
    return cast("TaskRecord | None", finish(bg, task_id, 1, {"status": "success", "lease_until": None}))


def test_a_thread_keeps_one_connection_for_its_claims_and_finishes(make_component: Any) -> None:
    bg = make_component()
    ids = [parse_task_id(u) for u in bg.create_many("t", [{"n": i} for i in range(5)], retain_for=-1)]
    bg.engine.dispose()
    before = _sessions(bg)
    for task_id in ids:
        done = _claim_and_finish(bg, task_id)
        assert done is not None and done.status == "success"
    # Ten statements, one session more than before (held by this thread), none checked out of the pool.
    assert _sessions(bg) == before + 1
    assert bg.engine.pool.checkedout() == 0
    bg.engine.dispose()  # disposing of the engine closes the held connection too
    wait_for(lambda: _sessions(bg) == before, what="held connection closed on dispose")


def test_a_thread_that_ends_closes_its_connection(make_component: Any) -> None:
    bg = make_component()
    task_id = parse_task_id(bg.create("t", {}, retain_for=-1))
    bg.engine.dispose()
    before = _sessions(bg)
    results: list[Any] = []

    def run() -> None:
        results.append(_claim_and_finish(bg, task_id))
        results.append(_sessions(bg))  # while the thread lives, its own connection is open

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert results and results[0] is not None and results[0].status == "success"
    assert results[1] == before + 1
    gc.collect()
    wait_for(lambda: _sessions(bg) == before, what="the ended thread's connection closed")


def test_a_killed_session_is_replaced_and_the_write_retried(make_component: Any) -> None:
    bg = make_component()
    first, second = (parse_task_id(u) for u in bg.create_many("t", [{}, {}], retain_for=-1))
    assert _claim_and_finish(bg, first) is not None
    bg.store._fast._idle = float("inf")  # no idle ping, however slow the machine: the write meets the dead session
    _kill_other_sessions(bg)
    now = now_ms()
    attempts: list[int] = []

    def claim_once() -> Any:
        attempts.append(1)
        return claim(bg, second, "t", 0, now, now + 60_000, "w")

    # The held connection is dead: the claim fails as an invalidated connection, which
    # with_retries (as the worker calls it) retries on a new one.
    row = with_retries("claim", claim_once)
    assert row is not None and row.attempt == 1
    assert len(attempts) == 2  # the first attempt met the dead session
    done = finish(bg, second, 1, {"status": "success", "lease_until": None})
    assert done is not None and done.status == "success"


def _kill_other_sessions(bg: Any) -> None:
    with bg.engine.connect() as conn:  # the server ends every other session on the database
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))


def test_an_idle_held_connection_is_pinged_and_replaced_before_it_is_used(make_component: Any) -> None:
    bg = make_component()
    first, second = (parse_task_id(u) for u in bg.create_many("t", [{}, {}], retain_for=-1))
    assert _claim_and_finish(bg, first) is not None
    bg.store._fast._idle = 0.0  # every use counts as after an idle spell: the ping runs first
    _kill_other_sessions(bg)
    # No retry here: the ping finds the session dead and the claim goes out on a new one.
    done = _claim_and_finish(bg, second)
    assert done is not None and done.status == "success"


def test_an_engine_with_pool_pre_ping_has_its_held_connection_pinged_before_every_use(
    make_component: Any, database_url: str
) -> None:
    bg = make_component(engine=make_engine(database_url, pool_pre_ping=True), database_url=None)
    first, second = (parse_task_id(u) for u in bg.create_many("t", [{}, {}], retain_for=-1))
    assert _claim_and_finish(bg, first) is not None  # the held connection was used a moment ago
    _kill_other_sessions(bg)
    # No retry here, and no idle spell: the ping before the claim finds the session dead.
    done = _claim_and_finish(bg, second)
    assert done is not None and done.status == "success"


def test_a_forked_child_uses_its_own_connection(make_component: Any) -> None:
    bg = make_component()
    ids = [parse_task_id(u) for u in bg.create_many("t", [{}, {}, {}], retain_for=-1)]
    assert _claim_and_finish(bg, ids[0]) is not None  # the parent now holds a connection
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_claims, args=(bg, ids[1]))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    # The parent's session survived the child (which neither used nor closed it).
    done = _claim_and_finish(bg, ids[2])
    assert done is not None and done.status == "success"
    assert [bg.get(i).status for i in ids] == ["success"] * 3


def _child_claims(bg: Any, task_id: str) -> None:
    done = _claim_and_finish(bg, task_id)
    os._exit(0 if done is not None and done.status == "success" else 1)
