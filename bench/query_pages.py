"""How fast is one ``query`` page, at the start and deep into the results?

Run with ``python -m bench.query_pages``. On PostgreSQL it creates a throwaway database,
bulk-inserts 100,000 task records (several types and statuses; 60,000 of them in the
filtered (type, status) so page 500 exists), runs ANALYZE, then times
``query(task_type=..., task_status=..., sort_property="dateCreated", limit=100)`` for
page 1 and for page 500 (reached by walking the cursor), as the median of several runs,
and prints the ``EXPLAIN ANALYZE`` of the page query. Keyset paging should make page 500
as fast as page 1; the target is under 10 ms a page. It asserts nothing about time.

``BGTASK_BENCH_PG`` overrides the admin URL (default: the test server's ``test`` database).
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from typing import Any

from celery import Celery
from sqlalchemy import event, text

from bench.common import throwaway_database
from celery_bgtask import BackgroundTaskComponent, QueryResult
from celery_bgtask.intake import new_record
from celery_bgtask.timeutil import now_ms

RECORDS = 100_000
TARGET_TYPE, TARGET_STATUS, TARGET_COUNT = "catalogue-import", "success", 60_000
OTHER_TYPES = ("image-resize", "sync-articles", "send-mail", "cleanup-cache")
STATUSES = ("pending", "processing", "success", "failed", "cancelled")
BATCH = 5_000
RUNS = 15
LIMIT = 100
DEEP_PAGE = 500


def fill(bg: BackgroundTaskComponent) -> None:
    """Insert the records in multi-row INSERTs of ``BATCH`` rows, in random creation order."""
    rng = random.Random(42)
    start = now_ms() - RECORDS * 10
    kinds = [(TARGET_TYPE, TARGET_STATUS)] * TARGET_COUNT + [
        (rng.choice((*OTHER_TYPES, TARGET_TYPE)), rng.choice(STATUSES)) for _ in range(RECORDS - TARGET_COUNT)
    ]
    rng.shuffle(kinds)
    bg.ensure_ready()
    for offset in range(0, RECORDS, BATCH):
        rows = []
        for i in range(offset, min(offset + BATCH, RECORDS)):
            task_type, status = kinds[i]
            created = start + i * 10 + rng.randrange(10)
            record = new_record(bg.settings, task_type, {"n": i}, retry_count=None, retry_interval=None,
                                retain_for=-1, now=created)
            finished = status in ("success", "failed", "cancelled")
            rows.append(dataclasses.replace(
                record, status=status, date_modified=created + 5, date_completed=created + 5 if finished else None,
                next_run_at=None if finished else created, result='{"ok":true}' if status == "success" else None))
        bg.store.insert(rows)
    with bg.engine.begin() as conn:
        conn.execute(text("ANALYZE bgtask_tasks"))


def page(bg: BackgroundTaskComponent, cursor: str | None, task_type: str = TARGET_TYPE,
         status: str = TARGET_STATUS) -> QueryResult:
    return bg.query(task_type=task_type, task_status=status, sort_property="dateCreated", cursor=cursor, limit=LIMIT)


def median_ms(bg: BackgroundTaskComponent, cursor: str | None) -> tuple[float, list[float]]:
    page(bg, cursor)  # warm the pool and the cache once
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        result = page(bg, cursor)
        times.append((time.perf_counter() - t0) * 1000)
        assert len(result.entities) == LIMIT
    return statistics.median(times), times


def explain(bg: BackgroundTaskComponent, cursor: str | None, task_type: str = TARGET_TYPE,
            status: str = TARGET_STATUS) -> str:
    """EXPLAIN ANALYZE of the very statement ``query`` sends (captured as it is executed)."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "FROM bgtask_tasks" in statement and "ORDER BY" in statement:
            seen.append((statement, parameters))

    event.listen(bg.engine, "before_cursor_execute", capture)
    try:
        page(bg, cursor, task_type, status)
    finally:
        event.remove(bg.engine, "before_cursor_execute", capture)
    statement, parameters = seen[-1]
    with bg.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).scalars().all()
    return "\n".join(plan)


def main() -> None:
    with throwaway_database() as url:
        bg = BackgroundTaskComponent(Celery("bench", broker="memory://", set_as_current=False), database_url=url)
        try:
            t0 = time.perf_counter()
            fill(bg)
            print(f"inserted {RECORDS:,} records ({TARGET_COUNT:,} of {TARGET_TYPE}/{TARGET_STATUS}) "
                  f"in {time.perf_counter() - t0:.1f} s")
            cursor: str | None = None
            t0 = time.perf_counter()
            for _ in range(DEEP_PAGE - 1):
                cursor = page(bg, cursor).cursor
                assert cursor is not None
            walk = (time.perf_counter() - t0) * 1000 / (DEEP_PAGE - 1)
            first, _ = median_ms(bg, None)
            deep, _ = median_ms(bg, cursor)
            print(f"page 1:   median {first:6.2f} ms over {RUNS} runs")
            print(f"page {DEEP_PAGE}: median {deep:6.2f} ms over {RUNS} runs (walking there: {walk:.2f} ms a page)")
            print(f"target: < 10 ms a page, page {DEEP_PAGE} as fast as page 1")
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) of page {DEEP_PAGE}:")
            print(explain(bg, cursor))
            # A selective filter (about 1% of the rows) goes through the (type, status, date_created, id) index.
            rare = OTHER_TYPES[0], "failed"
            second = page(bg, None, *rare).cursor
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) of page 2 of the rarer {rare[0]}/{rare[1]}:")
            print(explain(bg, second, *rare))
        finally:
            bg.engine.dispose()


if __name__ == "__main__":
    main()
