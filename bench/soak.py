"""Retention under a steady load: does the table level off?

Run with ``python -m bench.soak`` (or ``BENCH_SOAK=1 make bench``, after the other benches).
On a throwaway PostgreSQL database and Redis it starts a real worker (``celery worker -P
prefork -c 2``, default settings), then creates ``BENCH_SOAK_RATE`` (200) no-op tasks a
second, steadily, for ``BENCH_SOAK_SECONDS`` (180), each kept ``BENCH_SOAK_RETAIN_MS`` (2000)
ms after it finishes; the worker's cleanup runs every ``BENCH_SOAK_CLEANUP_MS`` (60000, the
default). Every ``BENCH_SOAK_SAMPLE`` (5) s it counts the records, and those not finished
yet (the worker's backlog, which retention does not bound). It prints the counts over time,
the peak, the slope of the last minute, and the level the table should stay under: rate x
(retain_for + cleanup_interval), the tasks of one cleanup interval plus those still retained
when the cleanup ran. It asserts nothing. ``BENCH_REDIS`` and ``BGTASK_BENCH_PG`` as for
``bench.throughput``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from sqlalchemy import Engine, create_engine, text

from bench.apps import make_app
from bench.common import throwaway_database
from bench.report import fmt, table
from bench.throughput import REDIS_URL, start_worker, stop_worker

if TYPE_CHECKING:
    from celery_bgtask import BackgroundTaskComponent

SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "180"))
RATE = int(os.environ.get("BENCH_SOAK_RATE", "200"))
RETAIN_MS = int(os.environ.get("BENCH_SOAK_RETAIN_MS", "2000"))
CLEANUP_MS = int(os.environ.get("BENCH_SOAK_CLEANUP_MS", "60000"))
SAMPLE = float(os.environ.get("BENCH_SOAK_SAMPLE", "5"))
#: How often the producer tops the tasks made up to the rate.
TICK = 0.1
#: "The last minute" of the slopes.
WINDOW = 60.0


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the stream started
    records: int
    unfinished: int  # pending or processing: the worker's backlog
    created: int


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (t, value) points (0 for fewer than two distinct times)."""
    if len(points) < 2:
        return 0.0
    mt = sum(t for t, _ in points) / len(points)
    mv = sum(v for _, v in points) / len(points)
    spread = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / spread if spread else 0.0


def within(points: Sequence[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    """The points with ``start < t <= end``."""
    return [(t, v) for t, v in points if start < t <= end]


def peak_growth(points: Sequence[tuple[float, float]], width: float) -> float | None:
    """How fast the peaks climb: the highest value of the last ``width`` seconds less the highest
    of the ``width`` before, per second (None when the run is shorter than both).

    Between two cleanups the table grows; each cleanup cuts it back: a sawtooth whose period
    is ``cleanup_interval``. A least-squares slope over one such period depends on where the
    teeth fall; the peaks stay level when the cleanup keeps up, and climb when it does not.
    """
    if not points:
        return None
    end = points[-1][0]
    last, before = within(points, end - width, end), within(points, end - 2 * width, end - width)
    if not last or not before or points[0][0] > end - 2 * width:
        return None
    return (max(v for _, v in last) - max(v for _, v in before)) / width


def expected_level(rate: float, retain_ms: int, cleanup_ms: int) -> float:
    """Records the table should stay under: one cleanup interval's tasks plus those still retained."""
    return rate * (retain_ms + cleanup_ms) / 1000


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        records, unfinished = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('pending', 'processing')) FROM bgtask_tasks")).one()
    return int(records), int(unfinished)


def stream(bg: BackgroundTaskComponent, engine: Engine, seconds: float, rate: int, every: float) -> list[Sample]:
    """Create ``rate`` tasks a second for ``seconds`` (topped up every ``TICK``), counting every ``every`` s."""
    samples: list[Sample] = []
    created, next_sample, t0 = 0, 0.0, time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        due = int(rate * elapsed)
        if due > created:
            bg.create_many("noop", [{"n": n} for n in range(created, due)])
            created = due
        if elapsed >= next_sample:
            samples.append(Sample(elapsed, *_counts(engine), created))
            next_sample += every
        time.sleep(max(0.0, TICK - (time.monotonic() - t0 - elapsed)))
    samples.append(Sample(time.monotonic() - t0, *_counts(engine), created))
    return samples


def _wait_idle(engine: Engine, deadline: float) -> None:
    """Until the worker has finished every task created so far (it is up and running)."""
    while _counts(engine)[1]:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not finish the warm-up task in time")
        time.sleep(0.2)


def render(samples: Sequence[Sample], rate: int, retain_ms: int, cleanup_ms: int) -> str:
    rows = [[f"{s.t:.0f}", fmt(s.records), fmt(s.records - s.unfinished), fmt(s.unfinished), fmt(s.created)]
            for s in samples]
    out = [table(["t s", "records", "finished (retained)", "not finished", "created"], rows), ""]
    records = [(s.t, float(s.records)) for s in samples]
    finished = [(s.t, float(s.records - s.unfinished)) for s in samples]
    end = samples[-1].t
    peak = max(samples, key=lambda s: s.records)
    expected = expected_level(rate, retain_ms, cleanup_ms)
    growth = peak_growth(records, WINDOW)
    last_peak = max(v for _, v in within(records, end - WINDOW, end))
    out += [
        f"rate {samples[-1].created / end:,.0f} tasks/s (asked {rate}), retain_for {retain_ms} ms, "
        f"cleanup_interval {cleanup_ms} ms",
        f"expected level: rate x (retain_for + cleanup_interval) = {expected:,.0f} records",
        f"peak: {peak.records:,} records at {peak.t:.0f} s ({max(v for _, v in finished):,.0f} finished at most); "
        f"last minute's peak {last_peak:,.0f}",
        f"slope of the last minute (least squares): {slope(within(records, end - WINDOW, end)):+,.1f} records/s "
        f"(finished only: {slope(within(finished, end - WINDOW, end)):+,.1f}/s)",
        "growth of the peak, last minute against the minute before: "
        + ("-" if growth is None else f"{growth:+,.1f} records/s"),
        f"levels off under the expected level: {'yes' if last_peak <= 1.1 * expected else 'NO'}",
    ]
    return "\n".join(out)


def main() -> None:
    print(f"soak: {RATE} tasks/s for {SECONDS:.0f} s, retain_for {RETAIN_MS} ms, cleanup_interval {CLEANUP_MS} ms, "
          f"broker {REDIS_URL}, {os.cpu_count()} cores", flush=True)
    queue = f"bench-soak-{os.getpid()}"
    client = redis.Redis.from_url(REDIS_URL)
    with throwaway_database("_soak") as url, tempfile.TemporaryDirectory(prefix="bgtask-soak-") as tmp:
        bench = make_app("bgtask", REDIS_URL, queue, url, REDIS_URL, retain_for=RETAIN_MS, cleanup_interval=CLEANUP_MS)
        assert bench.bg is not None
        engine = create_engine(url)
        bench.bg.create("noop", {"n": -1})  # migrates, and tells when the worker is up
        proc = start_worker("bgtask", queue, url, Path(tmp) / "worker.log",
                            {"BENCH_RETAIN_MS": str(RETAIN_MS), "BENCH_CLEANUP_MS": str(CLEANUP_MS)})
        try:
            _wait_idle(engine, time.monotonic() + 60)
            samples = stream(bench.bg, engine, SECONDS, RATE, SAMPLE)
        finally:
            stop_worker(proc)
            bench.bg.engine.dispose()
            engine.dispose()
            client.delete(queue, f"_kombu.binding.{queue}")
            client.close()
    print(render(samples, RATE, RETAIN_MS, CLEANUP_MS))


if __name__ == "__main__":
    main()
