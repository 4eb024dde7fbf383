"""Prometheus metrics (``pip install 'celery-bgtask[prometheus]'``).

Counters and histograms are fed by the component's event bus (``instrument``); the gauges
are read from the database when scraped (``collector``), cached for a few seconds so that
many scrapers cost one pair of indexed queries. See docs/metrics.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..component import BackgroundTaskComponent
from ..core.events import TaskEvent
from ..scheduling.firing import SCHEDULED_TYPE
from ..store.sql.stats import Stats, read_stats
from ..timeutil import now_ms

#: The transitions that end a run (the handler returned, or the definition's iteration did).
RUN_ENDS = frozenset({"succeed", "retry", "fail", "continue", "cancel", "abort"})
#: A claim not followed by its end in this process (a crash, a lost fence) is forgotten past this many.
MAX_OPEN_RUNS = 10_000


@dataclass
class Metrics:
    """The event-fed metrics, registered on one registry."""

    transitions: Counter
    run_seconds: Histogram
    wait_seconds: Histogram
    schedule_lateness: Histogram
    _claimed: dict[tuple[str, int], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, event: TaskEvent) -> None:
        """An event-bus subscriber: count the status entered, time the run and the wait."""
        record = event.record
        if event.changes_status:
            self.transitions.labels(type=record.type, status=record.status).inc()
        if event.transition == "claim":
            claimed_at = record.date_modified
            if record.next_run_at is not None:
                late = max(claimed_at - record.next_run_at, 0) / 1000
                self.wait_seconds.labels(type=record.type).observe(late)
                if record.type == SCHEDULED_TYPE:
                    self.schedule_lateness.observe(late)
            with self._lock:
                if len(self._claimed) >= MAX_OPEN_RUNS:
                    self._claimed.clear()
                self._claimed[(record.id, record.attempt)] = claimed_at
        elif event.transition in RUN_ENDS:
            with self._lock:
                started = self._claimed.pop((record.id, record.attempt), None)
            if started is not None:
                self.run_seconds.labels(type=record.type).observe(max(record.date_modified - started, 0) / 1000)


def instrument(bg: BackgroundTaskComponent, registry: CollectorRegistry) -> Metrics:
    """Register the counters and histograms on ``registry`` and feed them from ``bg``'s event bus."""
    metrics = Metrics(
        transitions=Counter("bgtask_transitions", "Each status a task enters", ["type", "status"], registry=registry),
        run_seconds=Histogram("bgtask_run_seconds", "Handler run time", ["type"], registry=registry),
        wait_seconds=Histogram("bgtask_wait_seconds", "From due to claimed", ["type"], registry=registry),
        schedule_lateness=Histogram("bgtask_schedule_lateness_seconds", "Firing time minus trigger time",
                                    registry=registry),
    )
    bg.events.subscribe(metrics.observe)
    return metrics


class DatabaseGauges(Collector):
    """``bgtask_tasks{type,status}`` and ``bgtask_oldest_pending_seconds{type}``, read at scrape time."""

    def __init__(self, bg: BackgroundTaskComponent, max_age: float = 5.0) -> None:
        self._bg = bg
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, Stats] | None = None

    def _stats(self) -> Stats:
        """One read per ``max_age`` seconds, whatever the number of scrapers."""
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self._max_age:
                self._bg.ensure_ready()
                self._cached = (time.monotonic(), read_stats(self._bg.engine))
            return self._cached[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        tasks = GaugeMetricFamily("bgtask_tasks", "Records by type and status", labels=["type", "status"])
        for (task_type, status), n in sorted(stats.counts.items()):
            tasks.add_metric([task_type, status], n)
        yield tasks
        oldest = GaugeMetricFamily("bgtask_oldest_pending_seconds", "Age of the oldest pending task",
                                   labels=["type"])
        now = now_ms()
        for task_type, created in sorted(stats.oldest_pending.items()):
            oldest.add_metric([task_type], max(now - created, 0) / 1000)
        yield oldest


def collector(bg: BackgroundTaskComponent, max_age: float = 5.0) -> DatabaseGauges:
    """The database gauges, for your own registry (``registry.register(collector(bg))``)."""
    return DatabaseGauges(bg, max_age)


def serve_from_worker(bg: BackgroundTaskComponent, port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` from each worker's main process, with the prefork children's counts.

    prometheus_client's multiprocess mode: when the worker starts (``worker_init``, before the
    pool forks) the metric values are switched to files in a fresh directory, which every child
    inherits and writes to under its own pid; the main process serves their sum
    (``MultiProcessCollector``) next to the database gauges. It works alike for the thread and
    solo pools, whose events happen in the main process. See docs/metrics.md.
    """
    from celery import signals

    def start(**_: object) -> None:
        import os
        import tempfile

        from prometheus_client import start_http_server, values
        from prometheus_client.multiprocess import MultiProcessCollector

        path = tempfile.mkdtemp(prefix="bgtask-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        instrument(bg, CollectorRegistry())  # values in files; this registry only names them
        exposed = CollectorRegistry()
        MultiProcessCollector(exposed, path=path)  # type: ignore[no-untyped-call]
        exposed.register(collector(bg))
        start_http_server(port, addr=address, registry=exposed)

    signals.worker_init.connect(start, weak=False, dispatch_uid=f"celery_bgtask.metrics.{id(bg)}")
