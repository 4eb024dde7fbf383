"""The Celery apps the throughput bench runs, as producer and as ``celery -A bench.apps worker``.

One module serves every variant; ``BENCH_MODE`` picks it when a worker imports it:

- ``plain``: plain Celery, no result backend;
- ``redis``: plain Celery with the Redis result backend;
- ``database``: plain Celery with its SQLAlchemy database backend and ``result_extended``;
- ``bgtask``: celery_bgtask (a durable record per task) on the same broker and database;
- ``chunked``: celery_bgtask with tasks made by ``create_many(..., chunk_size=BENCH_CHUNK)``,
  so one wake-up message carries several tasks (opt-in; the worker is the same).

Every variant runs the same no-op task on the same broker, so the difference is bookkeeping.
``BENCH_RETAIN_MS`` and ``BENCH_CLEANUP_MS`` set celery_bgtask's retention and cleanup interval
(the soak bench, ``bench.soak``, passes them to its worker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery import Celery

if TYPE_CHECKING:
    from celery_bgtask import BackgroundTaskComponent

MODES = ("plain", "redis", "database", "bgtask", "chunked")
NOOP = "bench.noop"
#: Long enough that every record is still there to be counted when the drain ends.
RETAIN_MS = 86_400_000


@dataclass
class BenchApp:
    mode: str
    app: Celery
    bg: BackgroundTaskComponent | None = None


def noop(n: Any = None) -> None:
    """The task body: nothing, so what is measured is the machinery around it."""
    return None


def make_app(mode: str, broker: str, queue: str, database_url: str, redis_url: str, *,
             retain_for: int = RETAIN_MS, cleanup_interval: int | None = None) -> BenchApp:
    """``retain_for`` and ``cleanup_interval`` (ms; None: the default) are celery_bgtask's settings."""
    if mode not in MODES:
        raise ValueError(f"BENCH_MODE must be one of {', '.join(MODES)}, got {mode!r}")
    app = Celery(f"bench-{mode}", broker=broker, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
    )
    if mode == "redis":
        app.conf.result_backend = redis_url
    elif mode == "database":
        app.conf.result_backend = f"db+{database_url}"
        app.conf.result_extended = True
    app.task(name=NOOP, ignore_result=mode == "plain")(noop)
    bg = None
    if mode in ("bgtask", "chunked"):
        # Imported here only: a plain-Celery worker must not carry our imports in its RSS.
        from celery_bgtask import BackgroundTaskComponent

        bg = BackgroundTaskComponent(app, database_url=database_url, default_retain_for=retain_for,
                                     cleanup_interval=cleanup_interval)
        bg.register_handler("noop", noop)
    return BenchApp(mode, app, bg)


def _from_env() -> BenchApp | None:
    mode = os.environ.get("BENCH_MODE")
    if mode is None:
        return None
    cleanup = os.environ.get("BENCH_CLEANUP_MS")
    return make_app(mode, os.environ["BENCH_BROKER"], os.environ["BENCH_QUEUE"],
                    os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_REDIS"],
                    retain_for=int(os.environ.get("BENCH_RETAIN_MS", RETAIN_MS)),
                    cleanup_interval=None if cleanup is None else int(cleanup))


_bench = _from_env()
#: What ``celery -A bench.apps`` finds when the worker starts.
app = _bench.app if _bench is not None else None
