"""Shared fixtures: real databases and brokers, a real in-process Celery worker.

Backends come from ``BGTASK_TEST_BACKENDS`` (default ``sqlite,postgres,mysql``). Each test
session gets its own PostgreSQL and MariaDB database and its own Celery queue, so several
sessions can run against the same servers at once. A missing service skips its tests on
a laptop and fails them when ``CI`` is set.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import TestWorkController, setup_app_for_worker
from celery.utils.nodenames import anon_nodename
from celery.worker import state as worker_state
from sqlalchemy import create_engine, text

from celery_bgtask import BackgroundTaskComponent
from celery_bgtask.celery import runner_of
from celery_bgtask.celery.publish import Wakeup
from celery_bgtask.store.schema import metadata
from celery_bgtask.timeutil import now_ms
from tests.helpers import require_service

SESSION = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
PG_ADMIN = os.environ.get("BGTASK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN = os.environ.get("BGTASK_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("BGTASK_TEST_REDIS", "redis://127.0.0.1:6379/0")
BACKENDS = [b for b in os.environ.get("BGTASK_TEST_BACKENDS", "sqlite,postgres,mysql").split(",") if b]


class _Databases:
    """Creates one database per server for this session, on first use; drops them at the end."""

    def __init__(self) -> None:
        self.created: dict[str, str] = {}

    def url(self, backend: str, tmp_root: Path) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_root / 'bgtask.sqlite3'}"
        if backend in self.created:
            return self.created[backend]
        name = f"bgtask_{SESSION}"
        if backend == "postgres":
            require_service("PostgreSQL", "127.0.0.1", 5432)
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        elif backend == "mysql":
            require_service("MariaDB", "127.0.0.1", 3306)
            admin = create_engine(MYSQL_ADMIN)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            admin.dispose()
            url = MYSQL_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        else:
            raise ValueError(backend)
        self.created[backend] = url
        return url

    def drop_all(self) -> None:
        name = f"bgtask_{SESSION}"
        if "postgres" in self.created:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        if "mysql" in self.created:
            admin = create_engine(MYSQL_ADMIN)
            with admin.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            admin.dispose()


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Databases]:
    dbs = _Databases()
    yield dbs
    dbs.drop_all()


def _empty_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            existing = set(engine.dialect.get_table_names(conn))
            for table in reversed(metadata.sorted_tables):
                if table.name in existing:
                    conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.hookimpl(tryfirst=True)  # before the fixture's own params are applied
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``pytestmark = pytest.mark.backends("postgres", ...)``: the module's tests run on those
    backends, whatever ``BGTASK_TEST_BACKENDS`` says (what they test exists there alone)."""
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", list(marker.args))


@pytest.fixture
def database_url(backend: str, _databases: _Databases, tmp_path: Path) -> str:
    """A migrated-on-first-use, empty database of the parametrised backend."""
    url = _databases.url(backend, tmp_path)
    if backend != "sqlite":
        _empty_tables(url)
    return url


@pytest.fixture
def broker_url(backend: str) -> str:
    """The embedded default (memory) with SQLite; real Redis with the server databases."""
    if backend == "sqlite":
        return "memory://"
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def queue_name() -> str:
    """A queue of this test's own, so parallel sessions on one Redis never share messages."""
    return f"bgtask-test-{SESSION}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def celery_app_factory(broker_url: str, queue_name: str) -> Callable[..., Celery]:
    def make(**conf: Any) -> Celery:
        app = Celery(f"test-{uuid.uuid4().hex[:6]}", broker=broker_url, set_as_current=False)
        app.conf.update(
            task_default_queue=queue_name,
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
            broker_transport_options={"polling_interval": 0.05},
            **conf,
        )
        return app

    return make


@pytest.fixture
def make_component(
    celery_app_factory: Callable[..., Celery], database_url: str
) -> Iterator[Callable[..., BackgroundTaskComponent]]:
    """Build a component on a fresh app (or the given one) over this test's database."""
    made: list[BackgroundTaskComponent] = []

    def make(app: Celery | None = None, **settings: Any) -> BackgroundTaskComponent:
        settings.setdefault("poll_interval", 50)
        settings.setdefault("database_url", database_url)
        bg = BackgroundTaskComponent(app or celery_app_factory(), **settings)
        made.append(bg)
        return bg

    yield make
    for bg in made:
        bg.engine.dispose()


@contextmanager
def _worker(app: Celery, pool: str = "threads", concurrency: int = 2) -> Iterator[Any]:
    """A real Celery worker in a thread, like ``celery.contrib.testing.worker.start_worker``.

    On exit it also wakes the worker's blocking drain with harmless wake-ups (claims
    that cannot succeed), so the memory transport stops at once instead of after its
    2 s drain timeout.
    """
    setup_app_for_worker(app, "WARNING", None)
    controller = TestWorkController(
        app=app, concurrency=concurrency, hostname=anon_nodename(), pool=pool, loglevel="WARNING",
        logfile=None, ready_callback=None, without_heartbeat=True, without_mingle=True, without_gossip=True,
    )
    thread = threading.Thread(target=controller.start, daemon=True)
    thread.start()
    controller.ensure_started()
    try:
        yield controller
    finally:
        worker_state.should_terminate = 0
        runner = runner_of(app)
        if runner is not None:
            # Celery runs one more drain cycle after it decides to stop, so send two.
            for _ in range(2):
                runner.publish_many([Wakeup("0" * 32, 0, app.conf.task_default_queue, "celery_bgtask.wakeup",
                                            now_ms())])
        thread.join(15)
        worker_state.should_terminate = None
        if thread.is_alive():
            raise RuntimeError("the test worker did not stop within 15 s")


@pytest.fixture
def worker() -> Callable[..., AbstractContextManager[Any]]:
    """``with worker(app): ...`` runs a real in-process Celery worker (thread pool by default)."""
    return _worker
