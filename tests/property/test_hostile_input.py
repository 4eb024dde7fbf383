"""Property tests of the producer-side API under hostile input (issue 14), on real databases.

For any input: the only exception is a ``BgTaskError`` whose message starts with the field
it names; a refused call leaves every table as it was; an accepted one leaves records that
``get`` and ``query`` read back and that dump to JSON (and validate again from it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from celery_bgtask import (
    BackgroundTaskComponent,
    BgTaskError,
    TaskContext,
    TaskSchedulerComponent,
    TaskValidationError,
)
from tests.helpers import dumps_back, readable, table_rows, take_messages
from tests.integration import scheduled_jobs
from tests.property.strategies import (
    chunk_sizes,
    delays,
    documents,
    ids,
    limits,
    mostly,
    names,
    numbers,
    retain_fors,
    retry_counts,
    retry_intervals,
    text,
    times,
)

# The function-scoped fixtures build one component per test, shared by its examples: each
# example compares the tables before and after itself, so what earlier ones left is fine.
EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FIELD = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")
SORTS = ["dateCreated", "date_created", "dateModified", "dateCompleted", "status", "id", "dateCreated desc"]  # 5 good


@pytest.fixture
def bg(make_component: Callable[..., BackgroundTaskComponent], queue_name: str) -> Iterator[BackgroundTaskComponent]:
    component = make_component(max_payload_bytes=4096)
    component.ensure_ready()

    @component.definition(id="prop-def")
    def run(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    yield component
    take_messages(component.app, queue_name)


def attempt(bg: BackgroundTaskComponent, call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``call``; a refusal must be a ``BgTaskError`` naming its field and must write nothing."""
    before = table_rows(bg.engine)
    try:
        answer = call()
    except BgTaskError as exc:
        event(f"refused: {type(exc).__name__}")
        assert FIELD.match(str(exc)), f"the message does not start with a field: {exc}"
        if isinstance(exc, TaskValidationError):
            assert str(exc).startswith(f"{exc.field}: ") and exc.rule
        assert table_rows(bg.engine) == before, f"{exc} but the tables changed"
        return False, exc
    event("accepted")
    return True, answer


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


@EXAMPLES
@given(task_type=names, payload=documents, retry_count=retry_counts, retry_interval=retry_intervals,
       retain_for=retain_fors)
def test_create_then_cancel(bg: BackgroundTaskComponent, task_type: Any, payload: Any, retry_count: Any,
                            retry_interval: Any, retain_for: Any) -> None:
    ok, urn = attempt(bg, lambda: bg.create(task_type, payload, retry_count=retry_count,
                                            retry_interval=retry_interval, retain_for=retain_for))
    if not ok:
        return
    task = readable(bg, urn, task_type=task_type)
    assert task.type == task_type and task.payload == _json(payload)
    assert attempt(bg, lambda: bg.cancel(urn)) == (True, True)
    if bg.get(urn) is not None:  # retain_for=0 removes it at once
        readable(bg, urn, task_type=task_type)
    assert attempt(bg, lambda: bg.remove(urn))[0]


@EXAMPLES
@given(task_type=names, payloads=st.lists(documents, max_size=4) | documents, retry_count=retry_counts,
       retain_for=retain_fors, chunk_size=chunk_sizes)
def test_create_many_is_all_or_nothing(bg: BackgroundTaskComponent, task_type: Any, payloads: Any, retry_count: Any,
                                       retain_for: Any, chunk_size: Any) -> None:
    ok, urns = attempt(bg, lambda: bg.create_many(task_type, payloads, retry_count=retry_count,
                                                  retain_for=retain_for, chunk_size=chunk_size))
    if ok:
        assert [readable(bg, u).payload for u in urns] == [_json(p) for p in payloads]


@EXAMPLES
@given(task_id=ids, message=st.one_of(st.none(), text, numbers))
def test_every_call_that_takes_an_id(bg: BackgroundTaskComponent, task_id: Any, message: Any) -> None:
    urn = bg.create("t", {"n": 1}, retain_for=-1)
    for call in (lambda: bg.get(task_id), lambda: bg.cancel(task_id), lambda: bg.retry(task_id),
                 lambda: bg.abort(task_id, message), lambda: bg.remove(task_id)):
        ok, answer = attempt(bg, call)
        assert not ok or answer in (None, False), answer  # none of these ids exists
    readable(bg, urn)
    assert attempt(bg, lambda: bg.abort(urn, message))[0] in (True, False)
    readable(bg, urn)


@EXAMPLES
@given(task_type=st.none() | names, status=mostly(st.sampled_from([None, "pending", "cancelled"]), text),
       sort=mostly(st.sampled_from(SORTS[:5]), st.sampled_from(SORTS[5:]) | text),
       direction=mostly(st.sampled_from(["asc", "desc"]), text), limit=limits,
       bend=st.tuples(st.integers(min_value=0, max_value=200), st.sampled_from(["cut", "flip", "insert", "keep"]),
                      text))
def test_query_and_its_cursors(bg: BackgroundTaskComponent, task_type: Any, status: Any, sort: Any, direction: Any,
                               limit: Any, bend: tuple[int, str, str]) -> None:
    if not bg.query(limit=1).entities:
        bg.create_many("t", [{"n": n} for n in range(5)], retain_for=-1)
    ok, page = attempt(bg, lambda: bg.query(task_type, status, sort, direction, limit=limit))
    if not ok:
        return
    for entity in page.entities:
        dumps_back(entity)
    cursor = bg.query(limit=2).cursor
    assert cursor is not None
    where, how, extra = bend
    where %= len(cursor)
    bent = {"cut": cursor[:where], "flip": cursor[:where] + extra + cursor[where + 1:],
            "insert": cursor[:where] + extra + cursor[where:], "keep": cursor}[how]
    ok, page = attempt(bg, lambda: bg.query(limit=2, cursor=bent))
    assert ok == (bent == cursor), bent
    if ok:
        assert len(page.entities) >= 1


@EXAMPLES
@given(definition=mostly(st.just("prop-def"), names), value=st.none() | documents, delay=delays,
       retain_for=retain_fors)
def test_trigger(bg: BackgroundTaskComponent, definition: Any, value: Any, delay: Any, retain_for: Any) -> None:
    ok, urn = attempt(bg, lambda: bg.trigger(definition, value, delay=delay, retain_for=retain_for))
    if ok:
        assert readable(bg, urn, task_type="prop-def").payload == ({} if value is None else _json(value))


@EXAMPLES
@given(schedule_id=names, schedule_times=times)
def test_add_task(bg: BackgroundTaskComponent, schedule_id: Any, schedule_times: Any) -> None:
    sched = TaskSchedulerComponent(bg.app, retain_for=-1)
    ok, _ = attempt(bg, lambda: sched.add_task(schedule_id, schedule_times, scheduled_jobs.nightly))
    if not ok:
        return
    listed = sched.tasks_info()
    assert schedule_id in listed.tasks
    listed.model_dump(mode="json", by_alias=True)
    sched.tick()  # a beat tick works whatever was scheduled
    for entity in bg.query(limit=1000).entities:
        dumps_back(entity)
    assert sched.remove_task(schedule_id)
