"""The record API of ``BackgroundTaskComponent`` on every backend, with no worker running.

With no worker, a created task simply stays ``pending``; states a worker would produce
(failed, success, waiting for a retry) are set up directly with the store's conditional
``transition``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from celery import Celery, signals
from sqlalchemy import create_engine, event, func, select

from celery_bgtask import (
    SCHEDULED_TYPE,
    BackgroundTask,
    BackgroundTaskComponent,
    BgTaskError,
    NamespaceMismatchError,
    SortDirection,
    TaskStatus,
    TaskValidationError,
)
from celery_bgtask.celery import RUN_TASK
from celery_bgtask.core.record import TaskRecord, as_row
from celery_bgtask.ids import parse_task_id
from celery_bgtask.intake import new_record
from celery_bgtask.store.migrate import VERSION_TABLE, ensure_schema
from celery_bgtask.store.schema import metadata, tasks
from celery_bgtask.timeutil import dt_to_ms, now_ms
from tests.helpers import set_fields, take_messages

URN = re.compile(r"^background-task:celery:[0-9a-f]{32}$")
HANDLERS = "tests.integration.handlers"
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


# -- helpers ----------------------------------------------------------------------------
def _count(bg: BackgroundTaskComponent) -> int:
    bg.ensure_ready()
    with bg.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tasks)).scalar_one())


def _row(bg: BackgroundTaskComponent, urn: str) -> Any:
    row = bg.store.get(parse_task_id(urn))
    assert row is not None
    return row


def _purge(app: Celery, queue: str) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


def _published(app: Celery, queue: str) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Take every message off ``queue``: (task name, args, kwargs) of each, checking the id header."""
    out = []
    for headers, args, kwargs in take_messages(app, queue):
        assert headers["id"] == args[0]
        out.append((headers["task"], args, kwargs))
    return out


def _insert(bg: BackgroundTaskComponent, rows: list[dict[str, Any]]) -> None:
    bg.ensure_ready()
    bg.store.insert([TaskRecord(**row) for row in rows])


def _rows(
    bg: BackgroundTaskComponent, n: int, *, now: int, task_type: str = "t", **fields: Any
) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row = as_row(new_record(bg.settings, task_type, {"i": i}, retry_count=None, retry_interval=None,
                                retain_for=-1, now=now))
        row.update(fields)
        rows.append(row)
    return rows


def _walk(bg: BackgroundTaskComponent, limit: int, **query: Any) -> list[BackgroundTask[Any, Any]]:
    """Every page of a query, following cursors; checks that only the last page has none."""
    seen: list[BackgroundTask[Any, Any]] = []
    cursor = None
    while True:
        page = bg.query(cursor=cursor, limit=limit, **query)
        seen.extend(page.entities)
        if page.cursor is None:
            return seen
        assert len(page.entities) == limit
        cursor = page.cursor


@pytest.fixture
def bg(make_component: Callable[..., BackgroundTaskComponent], queue_name: str) -> Iterator[BackgroundTaskComponent]:
    component = make_component()
    yield component
    _purge(component.app, queue_name)  # leave no messages behind on the shared Redis


# -- create -----------------------------------------------------------------------------
def test_create_commits_a_pending_record_and_publishes_it(bg: BackgroundTaskComponent, queue_name: str) -> None:
    before = now_ms()
    urn = bg.create("image-resize", {"imageId": "hero", "width": 1920})
    assert URN.match(urn)
    task = bg.get(urn)
    assert task is not None
    assert task.id == parse_task_id(urn)
    assert task.type == "image-resize" and task.status is TaskStatus.PENDING
    assert task.thread_id == queue_name  # the Celery queue it is routed to
    assert task.payload == {"imageId": "hero", "width": 1920}
    assert task.date_created == task.date_modified
    assert before <= dt_to_ms(task.date_created) <= now_ms()
    assert task.date_completed is None and task.date_cancelled is None and task.date_retain_until is None
    assert task.retries_remaining is None and task.retry_interval is None and task.result is None
    assert _row(bg, urn).enqueued_at is not None
    assert _published(bg.app, queue_name) == [(RUN_TASK, [task.id, 0], {"task_type": "image-resize"})]
    created = task.model_dump(mode="json", by_alias=True)["dateCreated"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created)
    assert task.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "id": task.id, "type": "image-resize", "threadId": queue_name, "dateCreated": created,
        "dateModified": created, "status": "pending", "payload": {"imageId": "hero", "width": 1920},
    }


def test_create_options_and_defaults(make_component: Callable[..., BackgroundTaskComponent], queue_name: str) -> None:
    bg = make_component(default_retry_interval=7000, default_retain_for=60_000)
    plain = bg.get(bg.create("t", None))
    retried = bg.get(bg.create("t", [1, 2], retry_count=2))
    custom = bg.get(bg.create("t", "x", retry_count=1, retry_interval=timedelta(seconds=3), retain_for=-1))
    assert plain is not None and retried is not None and custom is not None
    assert plain.payload is None and plain.retry_interval is None
    assert (retried.retries_remaining, retried.retry_interval) == (2, 7000)
    assert (custom.retries_remaining, custom.retry_interval, custom.payload) == (1, 3000, "x")
    assert _row(bg, plain.id).retain_for == 60_000
    assert _row(bg, custom.id).retain_for == -1
    _purge(bg.app, queue_name)


def test_record_is_committed_before_the_message_is_published(bg: BackgroundTaskComponent, queue_name: str) -> None:
    seen_at_publish: list[Any] = []

    def look(sender: Any = None, headers: Any = None, **_: Any) -> None:
        # Another connection reads the record while the message is about to be sent.
        seen_at_publish.append(bg.get(headers["id"]))

    signals.before_task_publish.connect(look, sender=RUN_TASK, weak=False)
    try:
        urn = bg.create("t", {"a": 1})
    finally:
        signals.before_task_publish.disconnect(look, sender=RUN_TASK)
    assert len(seen_at_publish) == 1
    task = seen_at_publish[0]
    assert task is not None and task.id == parse_task_id(urn) and task.status is TaskStatus.PENDING


def test_create_with_the_broker_down_still_commits_a_pending_record(
    make_component: Callable[..., BackgroundTaskComponent], queue_name: str
) -> None:
    app = Celery("broker-down", broker=UNREACHABLE_BROKER, set_as_current=False)
    app.conf.task_default_queue = queue_name
    bg = make_component(app)
    urn = bg.create("t", {"a": 1})
    task = bg.get(urn)
    assert task is not None and task.status is TaskStatus.PENDING and task.payload == {"a": 1}
    row = _row(bg, urn)
    assert row.enqueued_at is None  # not sent: a worker's sweeper publishes it
    assert row.next_run_at is not None and row.next_run_at <= now_ms()
    urns = bg.create_many("t", [1, 2])
    assert [_row(bg, u).enqueued_at for u in urns] == [None, None]
    assert _count(bg) == 3


BAD_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("", {}, "task_type"),
    ("   ", {}, "task_type"),
    (None, {}, "task_type"),  # type: ignore[list-item]
    (5, {}, "task_type"),  # type: ignore[list-item]
    ("x" * 201, {}, "task_type"),
    ("t", {"retry_count": "3"}, "retry_count"),
    ("t", {"retry_count": True}, "retry_count"),
    ("t", {"retry_count": -1}, "retry_count"),
    ("t", {"retry_count": 2.0}, "retry_count"),
    ("t", {"retry_interval": "1000"}, "retry_interval"),
    ("t", {"retry_interval": False}, "retry_interval"),
    ("t", {"retry_interval": 0}, "retry_interval"),
    ("t", {"retry_interval": 1.5}, "retry_interval"),
    ("t", {"retry_interval": timedelta(0)}, "retry_interval"),
    ("t", {"retain_for": "0"}, "retain_for"),
    ("t", {"retain_for": True}, "retain_for"),
    ("t", {"retain_for": -2}, "retain_for"),
    ("t", {"retain_for": 10.0}, "retain_for"),
    ("t", {"payload": {1, 2}}, "payload"),
    ("t", {"payload": object()}, "payload"),
    ("t", {"payload": {"x": math.nan}}, "payload"),
    ("t", {"payload": [math.inf]}, "payload"),
    ("t", {"payload": "x" * 2000}, "payload"),  # over max_payload_bytes=1024
]


def test_bad_creates_raise_and_write_nothing(make_component: Callable[..., BackgroundTaskComponent]) -> None:
    bg = make_component(max_payload_bytes=1024)
    assert bg.settings.max_payload_bytes == 1024
    for task_type, kwargs, field in BAD_CREATES:
        with pytest.raises(TaskValidationError) as info:
            bg.create(task_type, **kwargs)
        assert info.value.field == field, (task_type, kwargs)
        assert str(info.value).startswith(f"{field}: ") and info.value.rule
    assert _count(bg) == 0
    bg.create("t", "x" * 1000)  # under the limit is fine
    assert _count(bg) == 1


def test_payload_limit_defaults_to_one_megabyte(bg: BackgroundTaskComponent) -> None:
    with pytest.raises(TaskValidationError, match=r"^payload: JSON is 1000003 bytes, more than the maximum 1000000$"):
        bg.create("t", "x" * 1_000_001)
    assert _count(bg) == 0


def test_create_many_returns_urns_in_order(bg: BackgroundTaskComponent, queue_name: str) -> None:
    urns = bg.create_many("batch", [{"n": n} for n in range(5)], retry_count=1)
    assert len(urns) == 5 and all(URN.match(u) for u in urns)
    tasks_ = [bg.get(u) for u in urns]
    assert [t.payload for t in tasks_ if t is not None] == [{"n": n} for n in range(5)]
    assert {t.retries_remaining for t in tasks_ if t is not None} == {1}
    assert [args[0] for _, args, _ in _published(bg.app, queue_name)] == [parse_task_id(u) for u in urns]
    assert bg.create_many("batch", []) == []
    assert _count(bg) == 5


def test_create_many_is_one_insert_statement(bg: BackgroundTaskComponent, queue_name: str) -> None:
    """A batch is one INSERT on the wire (with its rows' mixed NULLs and values), whatever its size."""
    bg.create("warm", None)  # migrate and connect outside the count
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO BGTASK_TASKS"):
            inserts.append(statement)

    event.listen(bg.engine, "before_cursor_execute", seen)
    try:
        urns = bg.create_many("batch", [{"n": n} if n % 2 else None for n in range(1500)],
                              retry_count=2, retain_for=-1)
    finally:
        event.remove(bg.engine, "before_cursor_execute", seen)
    assert len(inserts) == 1
    first, second = bg.get(urns[0]), bg.get(urns[1])
    assert first is not None and first.payload is None and first.retries_remaining == 2
    assert second is not None and second.payload == {"n": 1} and second.date_retain_until is None
    assert len(_published(bg.app, queue_name)) == 1501
    assert _count(bg) == 1501


def test_create_many_is_all_or_nothing(bg: BackgroundTaskComponent) -> None:
    with pytest.raises(TaskValidationError) as info:
        bg.create_many("batch", [{"n": 0}, {"n": 1}, {"n": math.nan}, {"n": 3}])
    assert info.value.field == "payloads[2].payload"
    with pytest.raises(TaskValidationError) as info:
        bg.create_many("batch", [1, 2], retry_count="2")  # type: ignore[arg-type]
    assert info.value.field == "payloads[0].retry_count"
    with pytest.raises(TaskValidationError) as info:
        bg.create_many("", [1])
    assert info.value.field == "payloads[0].task_type"
    for not_a_list in ("abc", b"abc", 5, {"a": 1}):
        with pytest.raises(TaskValidationError) as info:
            bg.create_many("batch", not_a_list)  # type: ignore[arg-type]
        assert info.value.field == "payloads"
    assert _count(bg) == 0


# -- get --------------------------------------------------------------------------------
def test_get_by_urn_or_bare_id(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("t", {"a": 1})
    bare = parse_task_id(urn)
    by_urn, by_bare, by_upper = bg.get(urn), bg.get(bare), bg.get(bare.upper())
    assert by_urn is not None and by_urn == by_bare == by_upper
    assert bg.get("0" * 32) is None
    assert bg.get(f"background-task:celery:{'f' * 32}") is None
    with pytest.raises(NamespaceMismatchError):
        bg.get(f"background-task:entity-storage:{bare}")
    for malformed in ("", "nope", bare[:-1], f"background-task:celery:{bare}x", f"background-task:celery:{'z' * 32}"):
        with pytest.raises(TaskValidationError) as info:
            bg.get(malformed)
        assert info.value.field == "task_id"


# -- cancel -----------------------------------------------------------------------------
def _with_callback(bg: BackgroundTaskComponent, task_type: str) -> list[tuple[BackgroundTask[Any, Any], bool]]:
    """Register a handler whose callback records (task, whether the record still existed)."""
    seen: list[tuple[BackgroundTask[Any, Any], bool]] = []
    bg.register_handler(task_type, HANDLERS, "echo",
                        state_change_callback=lambda t: seen.append((t, bg.get(t.id) is not None)))
    return seen


def test_cancel_kept_forever(bg: BackgroundTaskComponent) -> None:
    seen = _with_callback(bg, "t")
    urn = bg.create("t", {"a": 1}, retain_for=-1)
    assert bg.cancel(urn) is True
    task = bg.get(urn)
    assert task is not None and task.status is TaskStatus.CANCELLED
    assert task.date_cancelled is not None and task.date_cancelled == task.date_modified
    assert task.date_retain_until is None and task.date_completed is None
    row = _row(bg, urn)
    assert row.next_run_at is None and row.enqueued_at is None  # nothing left to run
    assert [(t.id, t.status) for t, _ in seen] == [(task.id, TaskStatus.CANCELLED)]
    assert seen[0][0] == task
    assert bg.cancel(urn) is False  # already cancelled: a no-op
    assert len(seen) == 1


def test_cancel_retained_for_a_while(make_component: Callable[..., BackgroundTaskComponent], queue_name: str) -> None:
    bg = make_component(default_retain_for=timedelta(minutes=5))
    explicit, bare = bg.create("t", retain_for=60_000), parse_task_id(bg.create("t"))
    assert bg.cancel(explicit) and bg.cancel(bare)
    for task_id, retain in ((explicit, 60_000), (bare, 300_000)):
        task = bg.get(task_id)
        assert task is not None and task.status is TaskStatus.CANCELLED and task.date_retain_until is not None
        assert task.date_retain_until - task.date_modified == timedelta(milliseconds=retain)
    _purge(bg.app, queue_name)


def test_cancel_with_retain_for_zero_removes_the_record_after_the_callback(bg: BackgroundTaskComponent) -> None:
    seen = _with_callback(bg, "t")
    urn = bg.create("t", {"a": 1}, retain_for=0)
    assert bg.cancel(urn) is True
    assert bg.get(urn) is None
    assert len(seen) == 1
    task, existed = seen[0]
    assert task.status is TaskStatus.CANCELLED and task.date_cancelled is not None
    assert existed  # the callback ran while the record was still there


def test_a_raising_callback_does_not_change_the_cancel(
    bg: BackgroundTaskComponent, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(task: BackgroundTask[Any, Any]) -> None:
        raise RuntimeError("callback broke")

    bg.register_handler("t", HANDLERS, "echo", state_change_callback=explode)
    kept, removed = bg.create("t", retain_for=-1), bg.create("t", retain_for=0)
    with caplog.at_level("ERROR"):
        assert bg.cancel(kept) is True and bg.cancel(removed) is True
    task = bg.get(kept)
    assert task is not None and task.status is TaskStatus.CANCELLED
    assert bg.get(removed) is None
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 2 and parse_task_id(kept) in logged[0].getMessage()
    assert logged[0].exc_info is not None and "callback broke" in str(logged[0].exc_info[1])


def test_unregistered_type_gets_no_callback_and_stays_cancellable(bg: BackgroundTaskComponent) -> None:
    seen = _with_callback(bg, "t")
    bg.unregister_handler("t")
    urn = bg.create("t", retain_for=-1)
    assert bg.get(urn) is not None
    assert bg.cancel(urn) is True
    assert seen == []


def test_cancel_changes_only_pending_tasks(bg: BackgroundTaskComponent) -> None:
    seen = _with_callback(bg, "t")
    now = now_ms()
    states = {
        "processing": {"status": "processing", "attempt": 1, "lease_until": now + 60_000},
        "success": {"status": "success", "date_completed": now, "result": '{"ok":true}'},
        "failed": {"status": "failed", "date_completed": now, "error": '{"name":"E","message":"m"}'},
    }
    for status, values in states.items():
        urn = bg.create("t", retain_for=-1)
        set_fields(bg, urn, **values)
        before = bg.get(urn)
        assert bg.cancel(urn) is False, status
        assert bg.get(urn) == before
    assert bg.cancel("0" * 32) is False
    assert seen == []
    with pytest.raises(NamespaceMismatchError):
        bg.cancel(f"other:ns:{'0' * 32}")
    with pytest.raises(TaskValidationError):
        bg.cancel("bad")


# -- remove -----------------------------------------------------------------------------
def test_remove_deletes_whatever_the_status(bg: BackgroundTaskComponent) -> None:
    pending = bg.create("t", retain_for=-1)
    done = bg.create("t", retain_for=-1)
    set_fields(bg, done, status="success", date_completed=now_ms())
    failed = bg.create("t", retain_for=-1)
    set_fields(bg, failed, status="failed", date_completed=now_ms())
    for urn in (pending, parse_task_id(done), failed):
        assert bg.remove(urn) is True
        assert bg.get(urn) is None
        assert bg.remove(urn) is False
    assert bg.remove("0" * 32) is False
    assert _count(bg) == 0


# -- retry ------------------------------------------------------------------------------
def test_retry_requeues_a_retained_failed_task(bg: BackgroundTaskComponent, queue_name: str) -> None:
    seen = _with_callback(bg, "t")
    urn = bg.create("t", {"a": 1}, retain_for=-1)
    bare = parse_task_id(urn)
    _published(bg.app, queue_name)  # drop the create's message
    failed_at = now_ms()
    set_fields(bg, urn, status="failed", attempt=1, date_completed=failed_at, date_modified=failed_at,
         next_run_at=None, enqueued_at=None, error='{"name":"ValueError","message":"boom"}')
    assert bg.retry(urn) is True
    task = bg.get(urn)
    assert task is not None and task.status is TaskStatus.PENDING
    assert task.date_completed is None and task.date_retain_until is None
    assert dt_to_ms(task.date_modified) >= failed_at
    row = _row(bg, urn)
    assert row.next_run_at is not None and row.next_run_at <= now_ms() and row.enqueued_at is not None
    assert _published(bg.app, queue_name) == [(RUN_TASK, [bare, 1], {"task_type": "t"})]
    assert [t.status for t, _ in seen] == [TaskStatus.PENDING]
    assert bg.retry(urn) is False  # pending and already due: nothing to do


def test_retry_runs_a_waiting_task_now(bg: BackgroundTaskComponent, queue_name: str) -> None:
    seen = _with_callback(bg, "t")
    urn = bg.create("t", retry_count=3, retain_for=-1)
    _published(bg.app, queue_name)
    set_fields(bg, urn, attempt=1, retries_remaining=2, next_run_at=now_ms() + 3_600_000, enqueued_at=None)
    before = bg.get(urn)
    assert bg.retry(parse_task_id(urn)) is True
    row = _row(bg, urn)
    assert row.status == "pending" and row.next_run_at <= now_ms() and row.enqueued_at is not None
    assert bg.get(urn) == before  # the record itself is unchanged: it just runs sooner
    assert _published(bg.app, queue_name) == [(RUN_TASK, [parse_task_id(urn), 1], {"task_type": "t"})]
    assert seen == []  # no status change, no callback


def test_retry_leaves_other_tasks_alone(bg: BackgroundTaskComponent) -> None:
    now = now_ms()
    done = bg.create("t", retain_for=-1)
    set_fields(bg, done, status="success", date_completed=now)
    cancelled = bg.create("t", retain_for=-1)
    assert bg.cancel(cancelled)
    expired = bg.create("t", retain_for=1)
    set_fields(bg, expired, status="failed", date_completed=now - 10, date_retain_until=now - 9)
    for urn in (done, cancelled, expired):
        before = bg.get(urn)
        assert bg.retry(urn) is False
        assert bg.get(urn) == before
    assert bg.retry("0" * 32) is False


# -- query ------------------------------------------------------------------------------
def test_query_filters_by_type_and_status(bg: BackgroundTaskComponent) -> None:
    made = {("a", "pending"): bg.create_many("a", [1, 2, 3], retain_for=-1),
            ("b", "pending"): bg.create_many("b", [1, 2], retain_for=-1)}
    made[("a", "failed")] = made[("a", "pending")][:1]
    made[("a", "pending")] = made[("a", "pending")][1:]
    set_fields(bg, made[("a", "failed")][0], status="failed", date_completed=now_ms())
    made[("b", "cancelled")] = made[("b", "pending")][:1]
    made[("b", "pending")] = made[("b", "pending")][1:]
    assert bg.cancel(made[("b", "cancelled")][0])

    def ids(**filters: Any) -> set[str]:
        return {t.id for t in bg.query(**filters).entities}

    def expect(pred: Callable[[str, str], bool]) -> set[str]:
        return {parse_task_id(u) for (ty, st), urns in made.items() if pred(ty, st) for u in urns}

    assert ids() == expect(lambda ty, st: True)
    assert ids(task_type="a") == expect(lambda ty, st: ty == "a")
    assert ids(task_status="pending") == expect(lambda ty, st: st == "pending")
    assert ids(task_status=TaskStatus.CANCELLED) == expect(lambda ty, st: st == "cancelled")
    assert ids(task_type="a", task_status="failed") == expect(lambda ty, st: (ty, st) == ("a", "failed"))
    assert ids(task_type="b", task_status="failed") == set()
    assert ids(task_type="nobody") == set()
    page = bg.query(task_type="a", task_status="failed")
    assert page.cursor is None and page.entities[0].status is TaskStatus.FAILED


SORTS = [("dateCreated", "date_created"), ("dateModified", "date_modified"),
         ("dateCompleted", "date_completed"), ("status", "status")]


@pytest.mark.parametrize("camel,snake", SORTS, ids=[s for s, _ in SORTS])
def test_query_sorts_and_pages(bg: BackgroundTaskComponent, camel: str, snake: str) -> None:
    """Few distinct keys, so ties are broken by id; every record comes once, in order."""
    base = now_ms()
    statuses = ["pending", "processing", "success", "failed", "cancelled"]
    rows = []
    for i in range(23):
        row = _rows(bg, 1, now=base + (i % 4), task_type="sort")[0]
        status = statuses[i % 5]
        row.update(status=status, date_modified=base + 10 + (i % 3),
                   date_completed=base + 20 + (i % 2) if status in ("success", "failed") else None)
        rows.append(row)
    _insert(bg, rows)

    def key(row: dict[str, Any]) -> tuple[Any, str]:
        value = row[snake]
        return (-1 if value is None else value, row["id"])

    ascending = [r["id"] for r in sorted(rows, key=key)]
    for name in (camel, snake):
        for direction, expected in ((SortDirection.ASCENDING, ascending), ("desc", ascending[::-1])):
            got = [t.id for t in _walk(bg, 4, sort_property=name, sort_direction=direction)]
            assert got == expected, (name, direction)
    # A filter and a sort together.
    failed = [r["id"] for r in sorted(rows, key=key) if r["status"] == "failed"]
    assert [t.id for t in _walk(bg, 2, task_status="failed", sort_property=camel)] == failed


def test_query_pages_through_identical_creation_times(bg: BackgroundTaskComponent) -> None:
    now = now_ms()
    rows = _rows(bg, 37, now=now, task_type="tie")
    _insert(bg, rows)
    expected = sorted(r["id"] for r in rows)
    for limit in (1, 5, 37):
        assert [t.id for t in _walk(bg, limit)] == expected
        assert [t.id for t in _walk(bg, limit, sort_direction="desc", task_type="tie")] == expected[::-1]
    page = bg.query(limit=37)
    assert len(page.entities) == 37 and page.cursor is None  # exactly a full page: no next one


def test_query_default_and_maximum_limits(bg: BackgroundTaskComponent) -> None:
    _insert(bg, _rows(bg, 1001, now=now_ms()))
    first = bg.query()
    assert len(first.entities) == 100 and first.cursor is not None
    assert len(bg.query(limit=1000).entities) == 1000
    rest = bg.query(cursor=bg.query(limit=1000).cursor, limit=1000)
    assert len(rest.entities) == 1 and rest.cursor is None
    for bad in (0, -1, 1001, "10", True, 10.0):
        with pytest.raises(TaskValidationError) as info:
            bg.query(limit=bad)  # type: ignore[arg-type]
        assert info.value.field == "limit"


def test_query_rejects_bad_arguments(bg: BackgroundTaskComponent) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"sort_property": "created"}, "sort_property"),
        ({"sort_property": "DateCreated"}, "sort_property"),
        ({"sort_property": "id"}, "sort_property"),
        ({"sort_property": None}, "sort_property"),
        ({"sort_direction": "up"}, "sort_direction"),
        ({"sort_direction": "ASC"}, "sort_direction"),
        ({"sort_direction": 1}, "sort_direction"),
        ({"task_status": "done"}, "task_status"),
        ({"task_status": "PENDING"}, "task_status"),
        ({"task_type": ""}, "task_type"),
        ({"cursor": 5}, "cursor"),
        ({"cursor": "garbage"}, "cursor"),
    ]
    for kwargs, field in cases:
        with pytest.raises(TaskValidationError) as info:
            bg.query(**kwargs)
        assert info.value.field == field, kwargs


def test_query_rejects_tampered_and_foreign_cursors(bg: BackgroundTaskComponent) -> None:
    _insert(bg, _rows(bg, 5, now=now_ms(), task_type="c"))
    cursor = bg.query(task_type="c", limit=2).cursor
    assert cursor is not None
    assert len(bg.query(task_type="c", limit=2, cursor=cursor).entities) == 2
    body, mac = cursor.split(".")
    tampered = [f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{mac}", f"{body}.{mac[::-1]}", body, cursor + "x"]
    for bad in tampered:
        with pytest.raises(TaskValidationError, match=r"^cursor: "):
            bg.query(task_type="c", limit=2, cursor=bad)
    foreign = [{"task_type": "other"}, {"task_type": "c", "task_status": "pending"},
               {"task_type": "c", "sort_direction": "desc"}, {"task_type": "c", "sort_property": "dateModified"}]
    for query in foreign:
        with pytest.raises(TaskValidationError, match=r"^cursor: was issued for a different query"):
            bg.query(limit=2, cursor=cursor, **query)
    # The same query spelled differently is the same query; the limit may change between pages.
    assert len(bg.query(task_type="c", sort_property="date_created", sort_direction=SortDirection.ASCENDING,
                        cursor=cursor, limit=10).entities) == 3


# -- schema -----------------------------------------------------------------------------
def test_migration_and_schema_agree(bg: BackgroundTaskComponent) -> None:
    ensure_schema(bg.engine)
    with bg.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []


# -- construction -----------------------------------------------------------------------
def test_component_on_an_engine_or_app_conf_url(database_url: str, celery_app_factory: Callable[..., Celery]) -> None:
    engine = create_engine(database_url)
    by_engine = BackgroundTaskComponent(celery_app_factory(), engine=engine)
    app = celery_app_factory(bgtask_database_url=database_url)
    by_conf = BackgroundTaskComponent(app)
    try:
        assert by_engine.engine is engine
        assert by_conf.settings.database_url == database_url
        urn = by_engine.create_many("t", [1], retain_for=-1)[0]
        other = by_conf.get(urn)
        assert other is not None and other.payload == 1
        with pytest.raises(TaskValidationError) as info:
            BackgroundTaskComponent(celery_app_factory(), database_url, engine=engine)
        assert info.value.field == "database_url"
        _purge(by_engine.app, by_engine.settings.queue)
    finally:
        engine.dispose()
        by_conf.engine.dispose()


def test_register_handler_validates_its_arguments(tmp_path: Path) -> None:
    bg = BackgroundTaskComponent(Celery("reg", broker="memory://", set_as_current=False),
                                 database_url=f"sqlite:///{tmp_path / 'reg.sqlite3'}")
    bad: list[tuple[dict[str, Any], str]] = [
        ({"task_type": "", "module": HANDLERS, "method": "echo"}, "task_type"),
        ({"task_type": "t", "module": "not a path", "method": "echo"}, "module"),
        ({"task_type": "t", "module": HANDLERS, "method": None}, "method"),
        ({"task_type": "t", "module": HANDLERS, "method": "missing"}, "method"),
        ({"task_type": "t", "module": len, "method": "echo"}, "method"),
        ({"task_type": "t", "module": HANDLERS, "method": "echo", "options": {"maxWorkerCount": "4"}}, "options"),
        ({"task_type": "t", "module": HANDLERS, "method": "echo", "options": {"max_worker_count": 0}}, "options"),
        ({"task_type": "t", "module": HANDLERS, "method": "echo", "options": {"nope": 1}}, "options"),
        ({"task_type": "t", "module": HANDLERS, "method": "echo", "options": 5}, "options"),
        ({"task_type": "t", "module": HANDLERS, "method": "echo",
          "options": {"initialise_method": "missing"}}, "options"),
        ({"task_type": "t", "module": HANDLERS, "method": "echo", "state_change_callback": 5}, "state_change_callback"),
    ]
    for kwargs, field in bad:
        with pytest.raises(TaskValidationError) as info:
            bg.register_handler(**kwargs)
        assert info.value.field == field, kwargs
    with pytest.raises(BgTaskError):
        bg.register_handler("t", "tests.integration.no_such_module", "echo")
    assert bg.handler_types() == [SCHEDULED_TYPE]  # only the built-in type of scheduled firings
    bg.register_handler("t", HANDLERS, "echo", options={"maxWorkerCount": 2})
    spec = bg.handler("t")
    assert spec is not None and spec.options.max_worker_count == 2 and spec.function({"a": 1}) == {"echo": {"a": 1}}
    bg.engine.dispose()


# -- embedded default -------------------------------------------------------------------
def test_embedded_default_is_sqlite_in_the_working_directory_and_the_memory_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("BGTASK_DATABASE_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    app = Celery("x", set_as_current=False)
    bg = BackgroundTaskComponent(app)
    try:
        assert app.conf.broker_url == "memory://"
        assert bg.engine.dialect.name == "sqlite"
        assert bg.settings.database_url == f"sqlite:///{tmp_path / 'celery_bgtask.sqlite3'}"
        urn = bg.create("embedded", {"a": 1})
        assert (tmp_path / "celery_bgtask.sqlite3").is_file()
        # The file stays the one of the directory the component was made in.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        bg.engine.dispose()
        task = bg.get(urn)
        assert not (elsewhere / "celery_bgtask.sqlite3").exists()
        assert task is not None and task.status is TaskStatus.PENDING
        _purge(app, bg.settings.queue)
    finally:
        bg.engine.dispose()
