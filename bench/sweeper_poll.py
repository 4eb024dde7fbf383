"""What one sweeper poll costs while a backlog waits in the queue.

Run with ``python -m bench.sweeper_poll``. On a throwaway PostgreSQL database it creates
``BENCH_BACKLOG`` (default 200,000) pending tasks whose wake-up messages are live (as
after a burst of ``create_many`` that the workers have not caught up with), runs ANALYZE,
then times ``RUNS`` polls of the worker's sweeper (``Sweeper.publish_due``: the search
for due records with a missing or stale message, which here publishes none, as it should)
and prints the median; then again once every message is older than ``redeliver_after``
but still in the queue (each poll then finds a batch of stale records and must leave
them alone). Last, the server time and the rows read from ``EXPLAIN ANALYZE`` of both
queries. Every worker polls every ``poll_interval`` (1 s by default), so this is a
cost per worker per second for as long as a backlog lasts. Plain Celery has no such
search (and no record to find a lost message by), so there is nothing to set beside it.
It asserts nothing about time. ``BGTASK_BENCH_PG`` overrides the admin URL.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from celery import Celery
from sqlalchemy import event, text

from bench.common import plan_nodes, rows_read, throwaway_database
from celery_bgtask import BackgroundTaskComponent
from celery_bgtask.celery.sweeper import BATCH, Sweeper
from celery_bgtask.timeutil import now_ms

BACKLOG = int(os.environ.get("BENCH_BACKLOG", "200000"))
RUNS = 15


def main() -> None:
    with throwaway_database("_sweep") as url:
        app = Celery("bench-sweeper", broker="memory://", set_as_current=False)
        bg = BackgroundTaskComponent(app, database_url=url)
        bg.register_handler("noop", lambda payload: None)
        t0 = time.perf_counter()
        for start in range(0, BACKLOG, 5000):
            bg.create_many("noop", [{"n": n} for n in range(start, min(start + 5000, BACKLOG))])
        print(f"[PostgreSQL] created a backlog of {BACKLOG:,} pending tasks in {time.perf_counter() - t0:.1f} s")
        with bg.engine.connect() as conn:
            conn.execute(text("ANALYZE bgtask_tasks"))
            conn.commit()
        sweeper = Sweeper(bg)
        _time_polls(sweeper, f"sweeper poll with {BACKLOG:,} waiting")
        # The same backlog, its messages older than redeliver_after but still in the queue:
        # every poll finds BATCH stale records and must leave them alone (``backlog``).
        with bg.engine.begin() as conn:
            conn.execute(text("UPDATE bgtask_tasks SET enqueued_at = enqueued_at - :age"),
                         {"age": bg.settings.redeliver_after + 60_000})
            conn.execute(text("ANALYZE bgtask_tasks"))
        _time_polls(sweeper, f"sweeper poll with {BACKLOG:,} waiting longer than redeliver_after")
        statements: list[tuple[str, Any]] = []
        event.listen(bg.engine, "before_cursor_execute",
                     lambda _conn, _cur, sql, params, *_: statements.append((sql, params)))
        now = now_ms()
        for label, sent_before in (("never sent", None), ("stale", now - bg.settings.redeliver_after)):
            bg.store.due_for_publish(now, sent_before, bg.handler_types(), BATCH)
            sql, params = statements[-1]
            with bg.engine.connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0][0]
            kinds = sorted({n["Node Type"] for n in plan_nodes(plan["Plan"])})
            print(f"[PostgreSQL] the due query ({label}): {plan['Execution Time']:.2f} ms in the server, at most "
                  f"{rows_read(plan['Plan']):,} rows read by one plan node ({', '.join(kinds)})")
        bg.engine.dispose()


def _time_polls(sweeper: Sweeper, label: str) -> None:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        published = sweeper.publish_due(now_ms())
        times.append(time.perf_counter() - t0)
        assert published == 0, "every task of the backlog has its message in the queue"
    print(f"[PostgreSQL] {label}: median {statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
