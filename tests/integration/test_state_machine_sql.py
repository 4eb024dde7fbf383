"""The state machine's suite on every SQL store (the memory store runs it in tests/unit)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celery_bgtask.store.base import TaskStore
from celery_bgtask.store.engine import make_engine
from celery_bgtask.store.sql import SqlTaskStore
from tests.suites.state_machine import StateMachineSuite


@pytest.fixture
def store(database_url: str) -> Iterator[TaskStore]:
    engine = make_engine(database_url)
    sql = SqlTaskStore(engine)
    sql.ensure_schema()
    yield sql
    engine.dispose()


class TestSqlStore(StateMachineSuite):
    pass
