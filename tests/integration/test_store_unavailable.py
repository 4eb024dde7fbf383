"""A producer whose database does not answer gets ``StoreUnavailableError`` naming the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from celery_bgtask import BackgroundTaskComponent, TaskSchedulerComponent
from celery_bgtask.errors import StoreUnavailableError
from tests.tcpproxy import TcpProxy

PASSWORD = "s3cret-pw"
JOBS = "tests.integration.scheduled_jobs"
URN = "background-task:celery:" + "ab" * 16


pytestmark = pytest.mark.backends("postgres", "mysql")


@pytest.fixture
def down(database_url: str) -> Iterator[tuple[BackgroundTaskComponent, TaskSchedulerComponent]]:
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxy.cut()
        proxied = url.set(host="127.0.0.1", port=proxy.port, password=PASSWORD)
        app = Celery("producer", broker="memory://", set_as_current=False)
        bg = BackgroundTaskComponent(app, database_url=proxied.render_as_string(hide_password=False))
        yield bg, TaskSchedulerComponent(app)
        bg.engine.dispose()


CALLS: dict[str, Callable[[BackgroundTaskComponent, TaskSchedulerComponent], Any]] = {
    "create": lambda bg, _: bg.create("t", {"a": 1}),
    "create_many": lambda bg, _: bg.create_many("t", [{"a": 1}]),
    "get": lambda bg, _: bg.get(URN),
    "query": lambda bg, _: bg.query(),
    "cancel": lambda bg, _: bg.cancel(URN),
    "retry": lambda bg, _: bg.retry(URN),
    "remove": lambda bg, _: bg.remove(URN),
    "abort": lambda bg, _: bg.abort(URN),
    "add_task": lambda _, sched: sched.add_task("s", [{"intervalMinutes": 5}], f"{JOBS}:other"),
    "remove_task": lambda _, sched: sched.remove_task("s"),
    "tasks_info": lambda _, sched: sched.tasks_info(),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_each_call_raises_store_unavailable_naming_the_database_without_its_password(
    down: tuple[BackgroundTaskComponent, TaskSchedulerComponent], call: str
) -> None:
    bg, sched = down
    with pytest.raises(StoreUnavailableError) as caught:
        CALLS[call](bg, sched)
    message = str(caught.value)
    assert f"127.0.0.1:{bg.engine.url.port}" in message and "is not answering" in message
    assert PASSWORD not in message and "***" in message
    assert isinstance(caught.value.__cause__, OperationalError)
