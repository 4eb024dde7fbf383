"""The psycopg fast path of claim/finish behaves as the SQLAlchemy path would."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Row
from sqlalchemy.exc import DBAPIError

from celery_bgtask.ids import parse_task_id
from celery_bgtask.timeutil import now_ms


@pytest.fixture
def backend() -> str:
    return "postgres"


def test_claim_and_finish_return_rows_and_wrap_errors(make_component: Any) -> None:
    bg = make_component()
    assert bg.store._fast is not None  # psycopg 3 on PostgreSQL: the fast path is the one under test
    task_id = parse_task_id(bg.create("t", {"a": 1}, retain_for=-1))
    now = now_ms()
    row = bg.store.claim(task_id, 0, now, now + 60_000, "w1")
    assert isinstance(row, Row) and row.status == "processing" and row.attempt == 1
    assert row._mapping["payload"] == '{"a":1}' and row._mapping.get("worker") == "w1"
    assert bg.store.claim(task_id, 0, now, now + 60_000, "w2") is None  # fenced: the attempt moved on
    with pytest.raises(DBAPIError):
        bg.store.finish(task_id, 1, {"status": "x" * 100})  # longer than the column: the server refuses
    done = bg.store.finish(task_id, 1, {"status": "success", "lease_until": None, "result": "1"})
    assert done is not None and done.status == "success"  # the pool's connection survived the error
    assert bg.store.finish(task_id, 1, {"status": "failed"}) is None
    task = bg.get(task_id)
    assert task is not None and task.result == 1
