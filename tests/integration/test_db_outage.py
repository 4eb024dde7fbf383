"""A worker whose database goes away mid-run commits the outcome once it is back."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from celery_bgtask import TaskStatus
from tests.helpers import wait_for
from tests.integration import handlers
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.backends("postgres")


def test_final_state_is_retried_through_a_short_database_outage(
    make_component: Any, database_url: str, worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handlers.runs.clear()
    handlers.gate.clear()
    url = make_url(database_url)
    observer = make_component()  # reads the database directly, not through the proxy
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        bg = make_component(database_url=proxied)
        bg.register_handler("gated", "tests.integration.handlers", "gated")
        urn = bg.create("gated", {"key": "outage"}, retain_for=-1)
        caplog.set_level(logging.WARNING, logger="celery_bgtask.resilience")
        with worker(bg.app):
            wait_for(lambda: observer.get(urn).status == TaskStatus.PROCESSING, what="run started")
            proxy.cut()
            handlers.gate.set()  # the run finishes while the database is unreachable
            wait_for(lambda: "finish: database unavailable" in caplog.text, what="a failed attempt to commit")
            assert observer.get(urn).status == TaskStatus.PROCESSING  # nothing half-written
            proxy.restore()
            wait_for(lambda: observer.get(urn).status == TaskStatus.SUCCESS, what="committed after the outage")
    task = observer.get(urn)
    assert task is not None and task.result == "passed"
    assert handlers.runs["outage"] == 1
