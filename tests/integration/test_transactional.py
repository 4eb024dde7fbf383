"""Transactional create (``connection=``): the record commits or rolls back with the caller's
own writes, its wake-up goes out only after the commit, and a crash between the commit and the
publish is made good by a worker's sweeper."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.orm import Session

from celery_bgtask import BackgroundTaskComponent, TaskStatus
from celery_bgtask.ids import parse_task_id
from tests.acceptance.procs import ROOT, celery_env
from tests.helpers import count_records, refused, status_of, wait_for

orders = Table("bgtask_test_orders", MetaData(), Column("id", Integer, primary_key=True), Column("item", String(40)))


def _component(make_component: Callable[..., BackgroundTaskComponent]) -> BackgroundTaskComponent:
    bg = make_component(default_retain_for=-1)  # keep finished records to read them
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    bg.ensure_ready()
    orders.drop(bg.engine, checkfirst=True)
    orders.create(bg.engine)
    return bg


def _orders(bg: BackgroundTaskComponent) -> int:
    with bg.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(orders)).scalar_one())


def test_a_session_commit_keeps_both_and_runs_the_task(make_component: Any, worker: Any) -> None:
    bg = _component(make_component)
    with worker(bg.app):
        with Session(bg.engine) as session, session.begin():
            session.execute(orders.insert().values(item="book"))
            urn = bg.create("echo", {"n": 1}, connection=session)
            [second, third] = bg.create_many("echo", [{"n": 2}, {"n": 3}], chunk_size=2, connection=session)
            # Not committed yet: the component's own connections do not see the record.
            assert bg.get(urn) is None
        wait_for(lambda: all(status_of(bg, u) is TaskStatus.SUCCESS for u in (urn, second, third)),
                 what="the tasks committed with the session to run")
    assert _orders(bg) == 1
    task = bg.get(urn)
    assert task is not None and task.result == {"echo": {"n": 1}}


def test_a_rollback_leaves_no_task_and_nothing_runs(make_component: Any, worker: Any) -> None:
    bg = _component(make_component)
    with worker(bg.app):
        with Session(bg.engine) as session:
            session.begin()
            session.execute(orders.insert().values(item="book"))
            rolled_back = bg.create("echo", {"n": "rolled back"}, connection=session)
            session.rollback()
        with bg.engine.connect() as conn, conn.begin():
            conn.execute(orders.insert().values(item="pen"))
            rolled_back_too = bg.create("echo", {"n": "rolled back too"}, connection=conn)
            conn.rollback()
        after = bg.create("echo", {"n": "after"})
        wait_for(lambda: status_of(bg, after) is TaskStatus.SUCCESS, what="a later task to run")
    assert bg.get(rolled_back) is None and bg.get(rolled_back_too) is None
    assert [t.payload for t in bg.query(task_type="echo").entities] == [{"n": "after"}]
    assert _orders(bg) == 0


def test_a_connection_commit_is_published_by_the_sweeper(make_component: Any, worker: Any) -> None:
    bg = _component(make_component)
    with bg.engine.connect() as conn, conn.begin():
        conn.execute(orders.insert().values(item="lamp"))
        urn = bg.create("echo", {"n": "conn"}, connection=conn)
    row = bg.store.get(parse_task_id(urn))
    assert row is not None and row.status == TaskStatus.PENDING.value and row.enqueued_at is None
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) is TaskStatus.SUCCESS, what="the sweeper to publish the task")
    assert _orders(bg) == 1


def test_a_crash_between_commit_and_publish_is_published_by_the_sweeper(
    make_component: Any, worker: Any, database_url: str, broker_url: str, queue_name: str
) -> None:
    bg = _component(make_component)
    proc = subprocess.run([sys.executable, "-m", "tests.integration.crash_after_commit", database_url, broker_url,
                           queue_name], cwd=ROOT, env=celery_env({}), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    urn = proc.stdout.strip().splitlines()[-1]
    row = bg.store.get(parse_task_id(urn))
    assert row is not None and row.status == TaskStatus.PENDING.value and row.enqueued_at is None
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) is TaskStatus.SUCCESS, what="the sweeper to publish the crashed create")
    task = bg.get(urn)
    assert task is not None and task.result == {"echo": {"n": "crashed"}}


def test_a_connection_outside_a_transaction_or_of_another_kind_is_refused(make_component: Any) -> None:
    bg = _component(make_component)
    with bg.engine.connect() as conn:
        refused(bg, "connection", lambda: bg.create("echo", {"n": 1}, connection=conn))
    with Session(bg.engine) as session:
        refused(bg, "connection", lambda: bg.create("echo", {"n": 1}, connection=session))
    refused(bg, "connection", lambda: bg.create("echo", {"n": 1}, connection="not a connection"))  # type: ignore[arg-type]
    assert count_records(bg.engine) == 0


@pytest.mark.parametrize("kind", ["session", "connection"])
def test_trigger_takes_a_connection(make_component: Any, worker: Any, kind: str) -> None:
    bg = _component(make_component)

    @bg.definition("tx-def", retain_for=-1)
    def run(ctx: Any) -> Any:
        return {"input": ctx.input}

    with worker(bg.app):
        if kind == "session":
            with Session(bg.engine) as session, session.begin():
                urn = bg.trigger("tx-def", {"k": 1}, connection=session)
        else:
            with bg.engine.begin() as conn:
                urn = bg.trigger("tx-def", {"k": 1}, connection=conn)
        wait_for(lambda: status_of(bg, urn) is TaskStatus.SUCCESS, what="the triggered definition to finish")
    task = bg.get(urn)
    assert task is not None and task.result == {"input": {"k": 1}}
