"""Throughput against plain Celery, in one run, on the same broker (Redis) and database (PostgreSQL).

Run with ``make bench`` (``python -m bench``). For each variant (see ``bench.apps``) it:

1. produces ``BENCH_N`` no-op tasks with no worker running (the producer rate): a loop of
   ``apply_async`` for plain Celery; a loop of ``create()`` and ``create_many()`` in
   batches of ``BENCH_BATCH`` for celery_bgtask; for its ``chunked`` variant only
   ``create_many(..., chunk_size=BENCH_CHUNK)``, one wake-up message per chunk;
2. starts a real worker (``celery worker -P prefork -c 2``) and waits until every task is
   done (every record ``success``; every result stored; for plain Celery without results,
   the queue empty). The drain rate is taken from the first to the last completion time
   the backend stored, so the worker's start-up is left out; the wall time from starting
   the worker is printed beside it;
3. reads the worker's peak RSS (VmHWM of the main process, and summed over the tree) and
   the tree's PSS (shared pages counted once) when the drain ends;
4. reads the CPU time that the worker's main process (Celery's consumer), its pool
   children, PostgreSQL and Redis used from the first completion seen to the end, per task
   (Linux ``/proc``): on a machine with few cores the drain follows the CPU a task costs
   across all of them, and this says where it goes.

It prints the figures, the ratios and the targets of the speed issue. It asserts nothing
about time. Environment: ``BENCH_N`` (default 4000), ``BENCH_BATCH`` (500), ``BENCH_CHUNK`` (10),
``BENCH_MODES`` (the variants to run, default ``redis,database,bgtask,chunked,plain``),
``BENCH_ROUNDS`` (1; with more, each figure is the median of the rounds),
``BENCH_REDIS`` (``redis://127.0.0.1:6379/11``: broker and result backend),
``BGTASK_BENCH_PG`` (the admin URL the throwaway database is created from).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from bench import procinfo
from bench.apps import NOOP, BenchApp, make_app
from bench.common import throwaway_database
from bench.report import Target, fmt, rate, table, verdicts

if TYPE_CHECKING:
    from celery_bgtask import BackgroundTaskComponent

ROOT = Path(__file__).resolve().parents[1]
N = int(os.environ.get("BENCH_N", "4000"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
CHUNK = int(os.environ.get("BENCH_CHUNK", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11")
#: How often the drain is checked. The drain rate comes from the stored completion times, so
#: polling only has to notice the end, and slower polling loads the database less. Without
#: results there are none: the queue length is polled finely instead.
POLL, POLL_PLAIN = 0.5, 0.05

TARGETS = (
    Target("drain vs Celery + Redis results", "bgtask.drain", "redis.drain", 0.9),
    Target("drain vs Celery + database results", "bgtask.drain", "database.drain", 2.0),
    Target("create() vs apply_async (no results)", "bgtask.create", "plain.produce", 0.5),
    Target("create() vs apply_async (Redis results)", "bgtask.create", "redis.produce", 0.5),
    Target("create_many() vs apply_async loop", "bgtask.create_many", "plain.produce", 3.0),
    # Not the drain target (that is one message a task, above): the opt-in chunked path.
    Target(f"chunked drain (chunk_size={CHUNK}) vs Celery + Redis results", "chunked.drain", "redis.drain", 0.9),
)


@dataclass
class Result:
    mode: str
    produce: float = 0.0  # tasks/s: apply_async, or create() for bgtask
    create_many: float | None = None
    drain: float = 0.0  # tasks/s, first to last stored completion
    wall: float = 0.0  # s from starting the worker until all done
    rss_main_kb: int = 0
    rss_tree_kb: int = 0
    pss_tree_kb: int = 0
    #: CPU ms per task during the drain, by ``procinfo.CPU_GROUPS``
    cpu_ms: dict[str, float] = field(default_factory=dict)


# -- producing ----------------------------------------------------------------------
def produce(bench: BenchApp, n: int) -> tuple[float, float | None, list[str]]:
    """Create ``n`` tasks (and ``n`` more through ``create_many`` for bgtask); rates and ids."""
    if bench.bg is not None:
        bg = bench.bg
        bg.create("noop", {"n": -1})  # connect, migrate and open the broker connection first
        ids = ["warm-up"]
        if bench.mode == "chunked":
            return _in_batches(bg, n, ids, chunk_size=CHUNK), None, ids
        t0 = time.perf_counter()
        for i in range(n):
            ids.append(bg.create("noop", {"n": i}))
        single = rate(n, time.perf_counter() - t0)
        return single, _in_batches(bg, n, ids), ids
    task = bench.app.tasks[NOOP]
    ids = [task.apply_async(args=(-1,)).id]
    t0 = time.perf_counter()
    for i in range(n):
        ids.append(task.apply_async(args=(i,)).id)
    return rate(n, time.perf_counter() - t0), None, ids


def _in_batches(bg: BackgroundTaskComponent, n: int, ids: list[str], **options: Any) -> float:
    """``create_many`` of ``n`` tasks in batches of ``BATCH``, their ids appended to ``ids``; the rate."""
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        ids.extend(bg.create_many("noop", [{"n": i} for i in range(start, min(start + BATCH, n))], **options))
    return rate(n, time.perf_counter() - t0)


def messages_for(mode: str, ids: list[str]) -> int:
    """Wake-up messages that producing ``ids`` (the warm-up first) put in the queue."""
    if mode != "chunked":
        return len(ids)  # one each
    n = len(ids) - 1
    return 1 + sum(-(-min(BATCH, n - start) // CHUNK) for start in range(0, n, BATCH))


# -- waiting for the drain ----------------------------------------------------------
def _scalar(engine: Engine, sql: str) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    except DBAPIError:
        return 0  # Celery's result table is created by the worker on first use


def done_counter(bench: BenchApp, ids: list[str], engine: Engine, client: redis.Redis, queue: str
                 ) -> Callable[[], int]:
    if bench.bg is not None:
        return lambda: _scalar(engine, "SELECT count(*) FROM bgtask_tasks WHERE status = 'success'")
    if bench.mode == "database":
        return lambda: _scalar(engine, "SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS'")
    if bench.mode == "redis":
        keys = [f"celery-task-meta-{i}" for i in ids]
        return lambda: sum(int(client.exists(*keys[i:i + 1000])) for i in range(0, len(keys), 1000))
    # No results: all taken once the queue is empty (at most the prefetched few still run).
    return lambda: len(ids) - int(client.llen(queue))


def completion_span(bench: BenchApp, ids: list[str], engine: Engine, client: redis.Redis) -> float | None:
    """Seconds from the first to the last completion the backend stored (None: it stores none)."""
    if bench.bg is not None:
        with engine.connect() as conn:
            lo, hi = conn.execute(text("SELECT min(date_completed), max(date_completed) FROM bgtask_tasks")).one()
        return (hi - lo) / 1000
    if bench.mode == "database":
        with engine.connect() as conn:
            lo, hi = conn.execute(text("SELECT min(date_done), max(date_done) FROM celery_taskmeta")).one()
        return float((hi - lo).total_seconds())
    if bench.mode == "redis":
        stamps = []
        for i in range(0, len(ids), 1000):
            for raw in client.mget([f"celery-task-meta-{t}" for t in ids[i:i + 1000]]):
                stamps.append(datetime.fromisoformat(json.loads(raw)["date_done"]))
        return (max(stamps) - min(stamps)).total_seconds()
    return None


# -- the worker ---------------------------------------------------------------------
def start_worker(mode: str, queue: str, database_url: str, log: Path,
                 extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **(extra_env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(BENCH_MODE=mode, BENCH_BROKER=REDIS_URL, BENCH_REDIS=REDIS_URL, BENCH_QUEUE=queue,
               BENCH_DATABASE_URL=database_url)
    cmd = [sys.executable, "-m", "celery", "-A", "bench.apps", "worker", "-P", "prefork", "-c", "2",
           "-Q", queue, "-l", "warning", "--without-mingle", "--without-gossip", "--without-heartbeat"]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def run_variant(mode: str, database_url: str, logdir: Path, round_no: int) -> Result:
    queue = f"bench-{os.getpid()}-{round_no}-{mode}"
    bench = make_app(mode, REDIS_URL, queue, database_url, REDIS_URL)
    engine = create_engine(database_url)
    client = redis.Redis.from_url(REDIS_URL)
    result = Result(mode)
    try:
        result.produce, result.create_many, ids = produce(bench, N)
        if mode == "redis":
            # The producer subscribed to each result's channel; nobody reads them here, and an
            # unread subscriber would slow every publish from the worker.
            bench.app.backend.result_consumer.stop()
        queued = int(client.llen(queue))
        expected = messages_for(mode, ids)
        if queued != expected:
            print(f"  ({mode}: {queued} messages in the queue after producing, {expected} expected)", flush=True)
        counter = done_counter(bench, ids, engine, client, queue)
        log = logdir / f"{queue}.log"
        t0 = time.perf_counter()
        proc = start_worker(mode, queue, database_url, log)
        first = None
        cpu0: dict[int, tuple[str, float]] = {}
        done0 = 0
        deadline = t0 + 60 + len(ids) / 50
        try:
            while True:
                done = counter()
                now = time.perf_counter()
                if done and first is None:
                    first = now
                    cpu0, done0 = procinfo.cpu_snapshot(proc.pid), done
                if done >= len(ids):
                    break
                if proc.poll() is not None or now > deadline:
                    tail = log.read_text(errors="replace")[-1500:]
                    raise DrainStalled(f"{done}/{len(ids)} done when the wait ended; worker log tail:\n{tail}")
                time.sleep(POLL_PLAIN if mode == "plain" else POLL)
            result.wall = time.perf_counter() - t0
            if len(ids) > done0:
                used = procinfo.cpu_between(cpu0, procinfo.cpu_snapshot(proc.pid))
                result.cpu_ms = {g: seconds * 1000 / (len(ids) - done0) for g, seconds in used.items()}
            result.rss_main_kb, result.rss_tree_kb = procinfo.tree_peak_kb(proc.pid)
            result.pss_tree_kb = procinfo.tree_pss_kb(proc.pid)
        finally:
            stop_worker(proc)
        span = completion_span(bench, ids, engine, client)
        if span is None:  # no stored times: from the first poll that saw a task taken
            span = result.wall - ((first or t0) - t0)
        result.drain = rate(len(ids) - 1, span)
        return result
    finally:
        for key in (queue, f"_kombu.binding.{queue}"):
            client.delete(key)
        if mode == "redis":
            for i in range(0, len(ids), 1000):
                client.delete(*[f"celery-task-meta-{t}" for t in ids[i:i + 1000]])
        if bench.bg is not None:
            bench.bg.engine.dispose()
        bench.app.close()
        engine.dispose()
        client.close()


# -- the physics ----------------------------------------------------------------------
def physics(database_url: str) -> dict[str, float]:
    """The floor: single-row INSERT + commit per second, and rows per second in a batched INSERT."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_physics (id serial PRIMARY KEY, v text)"))
        with engine.connect() as conn:
            t0 = time.perf_counter()
            for i in range(1000):
                conn.execute(text("INSERT INTO bench_physics (v) VALUES (:v)"), {"v": str(i)})
                conn.commit()
            single = rate(1000, time.perf_counter() - t0)
            rows = [{"v": str(i)} for i in range(20_000)]
            t0 = time.perf_counter()
            for i in range(0, len(rows), 1000):
                conn.execute(text("INSERT INTO bench_physics (v) VALUES (:v)"), rows[i:i + 1000])
            conn.commit()
            batched = rate(len(rows), time.perf_counter() - t0)
        return {"insert+commit/s": single, "batched rows/s": batched}
    finally:
        engine.dispose()


class DrainStalled(RuntimeError):
    pass


def run_with_retry(mode: str, logdir: Path, round_no: int) -> Result:
    """One variant on a fresh database; again (up to three times) if its worker stalls, so one flake
    does not lose the whole run. Seen now and then with plain Celery's Redis-results worker on the
    shared Redis of the machine this was written on: its queue emptied, nothing ran, and the
    worker held no socket any more. The cause was not found."""
    for attempt in range(3):
        with throwaway_database(f"_{mode}") as db:
            try:
                return run_variant(mode, db, logdir, round_no * 10 + attempt)
            except DrainStalled as exc:
                print(f"  {mode}: {exc}; running it again", flush=True)
    raise DrainStalled(f"{mode}: stalled three times")


def median(results: list[Result]) -> Result:
    def mid(values: list[float]) -> float:
        return statistics.median(values)

    many = [r.create_many for r in results if r.create_many is not None]
    return Result(
        mode=results[0].mode,
        produce=mid([r.produce for r in results]),
        create_many=mid(many) if many else None,
        drain=mid([r.drain for r in results]),
        wall=mid([r.wall for r in results]),
        rss_main_kb=int(mid([r.rss_main_kb for r in results])),
        rss_tree_kb=int(mid([r.rss_tree_kb for r in results])),
        pss_tree_kb=int(mid([r.pss_tree_kb for r in results])),
        cpu_ms={g: mid([r.cpu_ms.get(g, 0.0) for r in results]) for g in procinfo.CPU_GROUPS}
        if any(r.cpu_ms for r in results) else {},
    )


def render(results: dict[str, Result], floor: dict[str, float]) -> str:
    labels = {
        "plain": "Celery, no result backend",
        "redis": "Celery + Redis results",
        "database": "Celery + database results (result_extended)",
        "bgtask": "celery_bgtask (durable record)",
        "chunked": f"celery_bgtask, create_many chunk_size={CHUNK}",
    }
    rows = []
    results = {m: results[m] for m in ("plain", "redis", "database", "bgtask", "chunked") if m in results}
    for mode, r in results.items():
        drain = fmt(r.drain) + (" (queue empty)" if mode == "plain" else "")
        rows.append([labels[mode], fmt(r.produce), fmt(r.create_many), drain, f"{r.wall:.1f}",
                     f"{r.rss_main_kb / 1024:.1f}", f"{r.rss_tree_kb / 1024:.1f}", f"{r.pss_tree_kb / 1024:.1f}"])
    out = [table(["variant", "produce/s", "create_many/s", "drain/s", "drain wall s", "peak RSS main MB",
                  "peak RSS tree MB", "PSS tree MB"], rows)]
    figures: dict[str, float | None] = {}
    for mode, r in results.items():
        figures[f"{mode}.produce"] = r.produce
        figures[f"{mode}.drain"] = r.drain
        if mode == "bgtask":
            figures["bgtask.create"] = r.produce
            figures["bgtask.create_many"] = r.create_many
    out.append("")
    out.append(table(["target", "ratio", "floor", "this run"], verdicts(figures, TARGETS)))
    if "bgtask" in results:
        ours = results["bgtask"]
        rss_rows = []
        for mode in ("plain", "redis", "database"):
            if mode in results:
                base = results[mode]
                rss_rows.append([f"worker vs {labels[mode]}",
                                 f"{(ours.rss_main_kb - base.rss_main_kb) / 1024:+.1f} MB",
                                 f"{(ours.rss_tree_kb - base.rss_tree_kb) / 1024:+.1f} MB",
                                 f"{(ours.pss_tree_kb - base.pss_tree_kb) / 1024:+.1f} MB", "<= +15 MB"])
        out.append("")
        out.append(table(["memory", "peak RSS main", "peak RSS tree (sum)", "PSS tree", "target"], rss_rows))
    cpu_rows = [[labels[mode], *(f"{r.cpu_ms.get(g, 0.0):.3f}" for g in procinfo.CPU_GROUPS),
                 f"{sum(r.cpu_ms.values()):.3f}"] for mode, r in results.items() if r.cpu_ms]
    if cpu_rows:
        out.append("")
        out.append(table(["CPU ms per task, drain", *procinfo.CPU_GROUPS, "sum"], cpu_rows))
    out.append("")
    out.append(table(["PostgreSQL floor", "per second"], [[k, fmt(v)] for k, v in floor.items()]))
    return "\n".join(out)


def main() -> None:
    # The Redis-results variant first: the stalls noted in run_with_retry came right after the plain one.
    modes = os.environ.get("BENCH_MODES", "redis,database,bgtask,chunked,plain").split(",")
    print(f"N={N} tasks per variant (bgtask: N via create() + N via create_many() in batches of {BATCH}), "
          f"{ROUNDS} round(s), broker and results {REDIS_URL}, {os.cpu_count()} cores", flush=True)
    with throwaway_database() as url, tempfile.TemporaryDirectory(prefix="bgtask-bench-") as tmp:
        floor = physics(url)
        runs: dict[str, list[Result]] = {m: [] for m in modes}
        for round_no in range(ROUNDS):
            for mode in modes:
                r = run_with_retry(mode, Path(tmp), round_no)
                runs[mode].append(r)
                print(f"  round {round_no + 1} {mode:9s} produce {r.produce:7.0f}/s"
                      + (f"  create_many {r.create_many:7.0f}/s" if r.create_many else "")
                      + f"  drain {r.drain:6.0f}/s  wall {r.wall:5.1f}s  RSS tree {r.rss_tree_kb / 1024:.1f} MB"
                      + f"  CPU/task {sum(r.cpu_ms.values()):.2f} ms",
                      flush=True)
        print()
        print(render({m: median(rs) for m, rs in runs.items()}, floor))


if __name__ == "__main__":
    main()
