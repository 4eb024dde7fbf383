"""How long does one beat tick take with 10,000 schedules, 10 of them due?

Run with ``python -m bench.beat_tick``. On a throwaway PostgreSQL database (and on a
SQLite file, the embedded default) it adds 10,000 schedules as ``add_task`` writes them, a
mix of interval times (daily, every 30 s) and cron times in Europe/Berlin, runs ANALYZE,
then, ``RUNS`` times: makes 10 of them due and times one
``celery_bgtask.beat.Scheduler.tick()`` (read the due times through the index, claim
each firing with a compare-and-set, commit their 10 task records, publish 10 wake-ups to
Redis, read the next trigger). Beside it, in the same run, it times what plain Celery's
beat does for 10 due entries at the least: 10 ``apply_async`` calls on the same broker.
It prints the medians and the ratio, and the plan of the due-times query. The target is
a tick under 20 ms. It asserts nothing about time.

``BGTASK_BENCH_PG`` overrides the admin URL, ``BGTASK_BENCH_REDIS`` the broker.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from celery import Celery
from sqlalchemy import insert, text, update

from bench.common import throwaway_database
from celery_bgtask import TaskSchedulerComponent
from celery_bgtask.beat import Scheduler
from celery_bgtask.store.schema import schedule_times, schedules
from celery_bgtask.timeutil import now_ms

REDIS_URL = os.environ.get("BGTASK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SCHEDULES = 10_000
DUE = 10
RUNS = 25
DAY = 86_400_000
BLANK = {"interval_days": None, "interval_seconds": None, "cron": None, "timezone": None}
#: The kinds of time the schedules cycle through: every due batch of 10 holds each kind.
MIX: list[dict[str, object]] = [
    {"interval_days": 1},
    {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"},
    {"interval_seconds": 30},
    {"cron": "*/5 * * * *", "timezone": "Europe/Berlin"},
]


def noop() -> None:
    """The benchmark's callback (never run: no worker consumes the bench queue)."""


def make_app(queue: str, database_url: str) -> Celery:
    app = Celery(f"bench-{uuid.uuid4().hex[:6]}", broker=REDIS_URL, set_as_current=False)
    app.conf.update(task_default_queue=queue, bgtask_database_url=database_url, broker_connection_retry_on_startup=True)
    return app


def fill(sched: TaskSchedulerComponent) -> None:
    """The schedules ``add_task`` would write, in multi-row INSERTs (10,000 ``add_task`` calls take a minute)."""
    sched.add_task("schedule-00000", [{"nextTriggerTime": now_ms() + DAY, "intervalDays": 1}], "bench.beat_tick:noop")
    later = now_ms() + DAY
    heads, times = [], []
    for n in range(1, SCHEDULES):
        heads.append({"id": f"schedule-{n:05d}", "callback": "function:bench.beat_tick:noop",
                      "date_created": later - DAY, "date_modified": later - DAY})
        times.append({"schedule_id": f"schedule-{n:05d}", "position": 0, "revision": uuid.uuid4().hex,
                      "next_trigger_time": later + n * 1000, **BLANK, **MIX[n % len(MIX)]})
    with sched.background.engine.begin() as conn:
        conn.execute(insert(schedules), heads)
        conn.execute(insert(schedule_times), times)


def make_due(sched: TaskSchedulerComponent, run: int) -> None:
    """Move 10 schedules (a different 10 each run) to due now, with a fresh trigger value."""
    ids = [f"schedule-{(run * DUE + k) % SCHEDULES:05d}" for k in range(DUE)]
    with sched.background.engine.begin() as conn:
        conn.execute(update(schedule_times).where(schedule_times.c.schedule_id.in_(ids))
                     .values(next_trigger_time=now_ms() - 1 - run))


def time_ticks(beat: Scheduler, sched: TaskSchedulerComponent) -> list[float]:
    times = []
    for run in range(RUNS):
        make_due(sched, run)
        t0 = time.perf_counter()
        beat.tick()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def time_plain_celery(app: Celery) -> list[float]:
    """Plain beat's floor for 10 due entries: the 10 publishes, with no bookkeeping at all."""

    @app.task(name="bench.plain_noop", ignore_result=True)
    def plain_noop() -> None:
        return None

    plain_noop.apply_async()  # warm the connection
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for _ in range(DUE):
            plain_noop.apply_async()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def explain_due(sched: TaskSchedulerComponent) -> str:
    """The plan of the tick's claim read with 10 times due (rolled back: nothing is claimed)."""
    make_due(sched, RUNS)
    with sched.background.engine.connect() as conn:
        plan = conn.execute(text(
            "EXPLAIN ANALYZE SELECT t.schedule_id, t.position, t.revision, t.next_trigger_time, s.callback "
            "FROM bgtask_schedule_times t JOIN bgtask_schedules s ON s.id = t.schedule_id "
            "WHERE t.next_trigger_time <= :now ORDER BY t.next_trigger_time LIMIT 200 FOR UPDATE OF t SKIP LOCKED"),
            {"now": now_ms()}).scalars().all()
    return "\n".join(plan)


def run_on(label: str, database_url: str) -> None:
    queue = f"bgtask-bench-beat-{uuid.uuid4().hex[:8]}"
    app = make_app(queue, database_url)
    sched = TaskSchedulerComponent(app, retain_for=0)
    try:
        t0 = time.perf_counter()
        fill(sched)
        if sched.background.engine.dialect.name == "postgresql":
            with sched.background.engine.begin() as conn:
                conn.execute(text("ANALYZE bgtask_schedule_times"))
                conn.execute(text("ANALYZE bgtask_schedules"))
        print(f"\n[{label}] added {SCHEDULES:,} schedules in {time.perf_counter() - t0:.1f} s")
        beat = Scheduler(app)
        beat.tick()  # warm the pool and the statement cache
        ours = time_ticks(beat, sched)
        plain = time_plain_celery(app)
        med, p90 = statistics.median(ours), sorted(ours)[int(RUNS * 0.9) - 1]
        base = statistics.median(plain)
        print(f"[{label}] bgtask beat tick, {DUE} due of {SCHEDULES:,}: median {med:6.2f} ms, p90 {p90:6.2f} ms "
              f"(target < 20 ms)")
        print(f"[{label}] plain Celery, {DUE} apply_async:          median {base:6.2f} ms")
        print(f"[{label}] ratio tick / plain publishes: {med / base:.2f}x")
        if sched.background.engine.dialect.name == "postgresql":
            print(f"[{label}] plan of the due-times query:\n{explain_due(sched)}")
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        sched.close()


def main() -> None:
    with throwaway_database() as url:
        run_on("PostgreSQL", url)
    with tempfile.TemporaryDirectory() as tmp:
        run_on("SQLite", f"sqlite:///{Path(tmp) / 'beat_bench.sqlite3'}")


if __name__ == "__main__":
    main()
