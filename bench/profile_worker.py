"""Per-task overhead of the worker path, from claim to final state, apart from the database.

Run with ``python -m bench.profile_worker`` (pyinstrument must be installed for the tree:
``pip install pyinstrument``). It creates ``BENCH_PROFILE_N`` (default 2000) records on a
throwaway PostgreSQL database, then runs each through Celery's own tracer in this process
(``task.apply``: the same ``celery_bgtask.run`` task, the same ``task_success`` signal that
settles the outcome, without a broker), and times every DB-API call (execute, commit,
rollback) on the way. What is left once the database calls are taken out is our Python (plus
Celery's tracer): the figure the speed issue wants under 1 ms a task. It prints that
split, the statements a task sends, and the pyinstrument tree of the whole loop.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import text

from bench.apps import make_app
from bench.common import throwaway_database
from celery_bgtask.celery import RUN_TASK
from celery_bgtask.intake import new_record
from celery_bgtask.timeutil import now_ms

N = int(os.environ.get("BENCH_PROFILE_N", "2000"))


class DbClock:
    """Seconds spent inside DB-API calls (each one a round trip to the server) and how many."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if name == "execute" and len(args) > 1:
                self.statements[" ".join(str(args[1]).split())[:100]] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls[name] += 1

        return timed


@contextmanager
def timing_dbapi(clock: DbClock) -> Iterator[None]:
    originals = {
        (psycopg.Cursor, "execute"): psycopg.Cursor.execute,
        (psycopg.Connection, "commit"): psycopg.Connection.commit,
        (psycopg.Connection, "rollback"): psycopg.Connection.rollback,
    }
    for (cls, name), fn in originals.items():
        setattr(cls, name, clock.wrap(name, fn))
    try:
        yield
    finally:
        for (cls, name), fn in originals.items():
            setattr(cls, name, fn)


def main() -> None:
    with throwaway_database("_profile") as url:
        bench = make_app("bgtask", "memory://", "profile", url, "redis://127.0.0.1:6379/11")
        bg = bench.bg
        assert bg is not None
        rows = [new_record(bg.settings, "noop", {"n": i}, retry_count=None, retry_interval=None, retain_for=None,
                           now=now_ms()) for i in range(N + 50)]
        bg.ensure_ready()
        bg.store.insert(rows)  # records only: no message is needed, the loop below runs them
        ids = [r.id for r in rows]
        task = bench.app.tasks[RUN_TASK]
        for task_id in ids[:50]:  # warm the pool, the compiled-statement cache and the heartbeat
            task.apply(args=(task_id, 0), kwargs={"task_type": "noop"}, task_id=task_id)
        ids = ids[50:]
        timed, profiled = ids[: len(ids) // 2], ids[len(ids) // 2:]
        # Pass 1, for the figures: no profiler (its sampling would be counted as our Python).
        clock, ours = DbClock(), DbClock()
        runner = bg.runner
        with timing_dbapi(clock):
            # Our part, from the claim to the settled outcome (callbacks included): Runner.execute.
            runner.execute = ours.wrap("execute", runner.execute)  # type: ignore[method-assign]
            t0 = time.perf_counter()
            for task_id in timed:
                task.apply(args=(task_id, 0), kwargs={"task_type": "noop"}, task_id=task_id)
            total = time.perf_counter() - t0
            del runner.execute
        n = len(timed)
        print(f"{n} tasks through the worker path in {total:.2f} s ({n / total:,.0f}/s)")
        print(f"per task: {total / n * 1000:.3f} ms in all, {clock.seconds / n * 1000:.3f} ms in DB-API calls "
              f"(round trips), {(total - clock.seconds) / n * 1000:.3f} ms of Python (ours and Celery's tracer)")
        print(f"claim to final state (Runner.execute): {ours.seconds / n * 1000:.3f} ms a task, "
              f"of which {(ours.seconds - clock.seconds) / n * 1000:.3f} ms is not a database call")
        print("DB-API calls per task: " + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(clock.calls.items())))
        print("statements per task:")
        for stmt, count in clock.statements.most_common():
            print(f"  {count / n:5.2f}  {stmt}")
        # Pass 2, for where the time goes: the same loop under pyinstrument.
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("(pyinstrument is not installed: no profile tree)")
        else:
            profiler = Profiler(interval=0.001)
            profiler.start()
            for task_id in profiled:
                task.apply(args=(task_id, 0), kwargs={"task_type": "noop"}, task_id=task_id)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=os.environ.get("BENCH_PROFILE_ALL") == "1"))
        with bg.engine.connect() as conn:
            done = conn.execute(text("SELECT count(*) FROM bgtask_tasks WHERE status = 'success'")).scalar()
        print(f"{done} of {len(ids) + 50} records success")
        bg.engine.dispose()


if __name__ == "__main__":
    main()
