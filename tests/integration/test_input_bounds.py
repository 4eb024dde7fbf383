"""Issue 14: every number, text and JSON document a caller hands in is bounded so that it
fits its column on each backend and reads back; anything outside is a ``TaskValidationError``
naming the field, and nothing is written. No worker runs here except where a run is the point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from celery_bgtask import (
    BackgroundTaskComponent,
    TaskContext,
    TaskSchedulerComponent,
    TaskStatus,
    TaskValidationError,
)
from celery_bgtask.limits import (
    MAX_DEPTH,
    MAX_DURATION_MS,
    MAX_DURATION_SECONDS,
    MAX_INSTANT_MS,
    MAX_ITERATIONS,
    MAX_MESSAGE_CHARS,
    MAX_RETRY_COUNT,
    MAX_RETRY_INTERVAL_MS,
    MAX_WORKER_COUNT,
)
from celery_bgtask.timeutil import now_ms
from tests.helpers import deep, status_of, table_rows, take_messages, wait_for
from tests.integration import scheduled_jobs

H = "tests.integration.handlers"


@pytest.fixture
def bg(make_component: Callable[..., BackgroundTaskComponent], queue_name: str) -> Iterator[BackgroundTaskComponent]:
    component = make_component()
    component._ensure()
    yield component
    take_messages(component.app, queue_name)  # leave no messages behind on the shared Redis


def refused(bg: BackgroundTaskComponent, field: str, call: Callable[[], Any]) -> TaskValidationError:
    """``call`` raises ``TaskValidationError`` for ``field``, and the tables are as they were."""
    before = table_rows(bg.engine)
    with pytest.raises(TaskValidationError) as info:
        call()
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(f"{field}: ")
    assert table_rows(bg.engine) == before
    return info.value


def readable(bg: BackgroundTaskComponent, urn: str) -> None:
    """The record reads back through ``get`` and every page of ``query``, and dumps as JSON."""
    task = bg.get(urn)
    assert task is not None
    task.model_dump(mode="json", by_alias=True, exclude_none=True)
    page = bg.query(limit=1000)
    assert task.id in {t.id for t in page.entities}
    for entity in page.entities:
        entity.model_dump(mode="json", by_alias=True, exclude_none=True)


# -- durations and counts -----------------------------------------------------------------
@pytest.mark.parametrize("value", [10**15, 2**63 - 1, MAX_DURATION_MS + 1, timedelta.max, timedelta(days=36_526)])
def test_retain_for_beyond_100_years_is_refused(bg: BackgroundTaskComponent, value: Any) -> None:
    refused(bg, "retain_for", lambda: bg.create("x", {}, retain_for=value))
    refused(bg, "payloads[0].retain_for", lambda: bg.create_many("x", [{}], retain_for=value))


def test_retain_for_of_100_years_is_kept_and_reads_back_after_cancel(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("x", {}, retain_for=MAX_DURATION_MS)
    assert bg.cancel(urn)
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.date_retain_until is not None and task.date_cancelled is not None
    assert task.date_retain_until.year == task.date_cancelled.year + 100


@pytest.mark.parametrize(("field", "value"), [
    ("retry_count", 2**31), ("retry_count", MAX_RETRY_COUNT + 1), pytest.param("retry_count", 10**5000, id="10**5000"),
    ("retry_interval", 2**31), ("retry_interval", 2**63 - 1), ("retry_interval", MAX_RETRY_INTERVAL_MS + 1),
    ("retry_interval", timedelta.max), ("retry_interval", timedelta(days=25)),
])
def test_counts_and_intervals_beyond_their_columns_are_refused(bg: BackgroundTaskComponent, field: str,
                                                               value: Any) -> None:
    error = refused(bg, field, lambda: bg.create("x", {}, **{field: value}))
    assert "at most" in error.rule


def test_the_largest_count_and_interval_are_stored_on_every_backend(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("x", {}, retry_count=MAX_RETRY_COUNT, retry_interval=MAX_RETRY_INTERVAL_MS)
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and (task.retries_remaining, task.retry_interval) == (MAX_RETRY_COUNT,
                                                                                  MAX_RETRY_INTERVAL_MS)


@pytest.mark.parametrize(("name", "value"), [
    ("default_retry_interval", 2**31), ("default_retain_for", 10**15), ("cleanup_interval", 2**63),
    ("lease", timedelta.max), ("poll_interval", 10**20), ("redeliver_after", MAX_DURATION_MS + 1),
])
def test_component_settings_beyond_100_years_or_their_column_are_refused(
    make_component: Callable[..., BackgroundTaskComponent], name: str, value: Any
) -> None:
    with pytest.raises(TaskValidationError) as info:
        make_component(**{name: value})
    assert info.value.field == name and "at most" in info.value.rule


def test_retry_count_zero_means_no_retries_like_none(bg: BackgroundTaskComponent) -> None:
    zero, none = bg.get(bg.create("x", {}, retry_count=0)), bg.get(bg.create("x", {}))
    assert zero is not None and none is not None
    assert (zero.retries_remaining, zero.retry_interval) == (none.retries_remaining, none.retry_interval) == (None,
                                                                                                             None)
    assert [bg.get(u).retries_remaining for u in bg.create_many("x", [1, 2], retry_count=0)] == [None, None]  # type: ignore[union-attr]


def test_retry_count_zero_fails_at_the_first_failure(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("boom", H, "boom")
    urn = bg.create("boom", {}, retry_count=0, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="a final failure")
    task = bg.get(urn)
    assert task is not None and task.retries_remaining is None and task.error is not None
    assert task.error.message == "boom"


@pytest.mark.parametrize("delay", [math.inf, -math.inf, math.nan, 2**80, MAX_DURATION_SECONDS + 1, timedelta.max, -1])
def test_trigger_delay_must_be_finite_and_at_most_100_years(bg: BackgroundTaskComponent, delay: Any) -> None:
    @bg.definition(id="later")
    def later(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    refused(bg, "delay", lambda: bg.trigger("later", {}, delay=delay))
    refused(bg, "retain_for", lambda: bg.trigger("later", {}, retain_for=10**15))
    urn = bg.trigger("later", {}, delay=MAX_DURATION_SECONDS)
    readable(bg, urn)


@pytest.mark.parametrize(("field", "value"), [
    ("max_iterations", 2**31), ("max_iterations", MAX_ITERATIONS + 1), ("soft_time_limit", math.inf),
    ("soft_time_limit", 10**20), ("retain_for", 2**63 - 1),
])
def test_definition_options_are_bounded(bg: BackgroundTaskComponent, field: str, value: Any) -> None:
    with pytest.raises(TaskValidationError) as info:
        bg.definition(id="bounded", **{field: value})(lambda ctx: None)
    assert info.value.field == field
    assert bg.get_definition("bounded") is None


@pytest.mark.parametrize("options", [{"max_worker_count": 2**31}, {"max_worker_count": MAX_WORKER_COUNT + 1},
                                     {"idle_shutdown_timeout": 2**63}])
def test_handler_options_are_bounded(bg: BackgroundTaskComponent, options: dict[str, Any]) -> None:
    with pytest.raises(TaskValidationError) as info:
        bg.register_handler("opts", H, "echo", options=options)
    assert info.value.field == "options"
    assert bg.handler("opts") is None


# -- schedules ------------------------------------------------------------------------------
@pytest.fixture
def sched(bg: BackgroundTaskComponent) -> TaskSchedulerComponent:
    return TaskSchedulerComponent(bg.app, retain_for=-1)


@pytest.mark.parametrize(("time", "field"), [
    ({"intervalMinutes": 2**50}, "times[0].intervalMinutes"),
    ({"intervalHours": 2**31}, "times[0].intervalHours"),
    ({"intervalDays": 36_526}, "times[0].intervalDays"),
    ({"nextTriggerTime": 2**63}, "times[0].nextTriggerTime"),
    ({"nextTriggerTime": MAX_INSTANT_MS + 1, "intervalDays": 1}, "times[0].nextTriggerTime"),
    ({"intervalDays": 36_525, "intervalMinutes": 1}, "times[0]"),
])
def test_schedule_times_beyond_their_bounds_are_refused(bg: BackgroundTaskComponent, sched: TaskSchedulerComponent,
                                                         time: dict[str, int], field: str) -> None:
    refused(bg, field, lambda: sched.add_task("big", [time], scheduled_jobs.nightly))
    assert sched.tick().fired == []  # the beat still ticks


def test_the_longest_schedule_interval_fires_and_moves_on(bg: BackgroundTaskComponent,
                                                          sched: TaskSchedulerComponent) -> None:
    now = now_ms()
    sched.add_task("century", [{"nextTriggerTime": now - 1, "intervalDays": 36_525}], scheduled_jobs.nightly)
    assert len(sched.tick().fired) == 1
    [time] = sched.tasks_info().tasks["century"]
    assert time.next_trigger_time == now - 1 + MAX_DURATION_MS


# -- text -----------------------------------------------------------------------------------
def test_names_must_not_end_with_a_space(bg: BackgroundTaskComponent, sched: TaskSchedulerComponent) -> None:
    refused(bg, "task_type", lambda: bg.create("abc ", {}))
    refused(bg, "task_type", lambda: bg.query(task_type="abc "))
    refused(bg, "task_id", lambda: sched.add_task("daily ", [{"intervalDays": 1}], scheduled_jobs.nightly))
    with pytest.raises(TaskValidationError, match=r"^id: must not end with a space$"):
        bg.definition(id="sync ")(lambda ctx: None)


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", "x\udfffy"])
def test_nul_and_lone_surrogates_are_refused_everywhere_text_is_stored(bg: BackgroundTaskComponent,
                                                                        sched: TaskSchedulerComponent,
                                                                        bad: str) -> None:
    @bg.definition(id="plain")
    def plain(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    refused(bg, "task_type", lambda: bg.create(bad, {}))
    refused(bg, "payload", lambda: bg.create("x", bad))
    refused(bg, "payload", lambda: bg.create("x", {"a": [1, {"b": bad}]}))
    refused(bg, "payload", lambda: bg.create("x", {"a": [{bad: 1}]}))
    refused(bg, "payloads[1].payload", lambda: bg.create_many("x", [{}, {"k": bad}]))
    refused(bg, "input", lambda: bg.trigger("plain", {"deep": [bad]}))
    refused(bg, "task_id", lambda: sched.add_task(bad, [{"intervalDays": 1}], scheduled_jobs.nightly))
    refused(bg, "task_type", lambda: bg.query(task_type=bad))
    refused(bg, "task_id", lambda: bg.get(bad))
    urn = bg.create("x", {})
    refused(bg, "message", lambda: bg.abort(urn, bad))
    readable(bg, urn)


def test_the_path_of_a_bad_string_is_named(bg: BackgroundTaskComponent) -> None:
    error = refused(bg, "payload", lambda: bg.create("x", {"a": [0, {"b": "\x00"}]}))
    assert error.rule == "must not contain a NUL character at ['a'][1]['b']"


# -- nesting and keys -------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 255, 989, 1000, 5000])
def test_payloads_nested_too_deep_are_refused(bg: BackgroundTaskComponent, depth: int) -> None:
    @bg.definition(id="plain")
    def plain(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    error = refused(bg, "payload", lambda: bg.create("x", deep(depth)))
    assert error.rule == f"is nested more than {MAX_DEPTH} levels deep"
    refused(bg, "input", lambda: bg.trigger("plain", {"k": deep(depth)}))


def test_a_payload_at_the_depth_limit_is_stored_and_reads_back(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("x", deep(MAX_DEPTH))
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.payload == deep(MAX_DEPTH)


def test_a_result_nested_too_deep_fails_the_task_and_listing_still_works(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("nested", H, "nested")
    urn = bg.create("nested", {"depth": 300}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="the deep result to fail the task")
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.result is None and task.error is not None
    assert task.error.name == "TaskValidationError"
    assert task.error.message == f"result: is nested more than {MAX_DEPTH} levels deep"


def test_a_failure_whose_message_cannot_be_encoded_is_still_recorded(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("undecodable", H, "undecodable")
    urn = bg.create("undecodable", {}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="the failure to be recorded")
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.error is not None
    assert (task.error.name, task.error.message) == ("OSError", "cannot open caf\ufffd.txt")
    assert task.error.stack is not None and "caf\ufffd.txt" in task.error.stack


@pytest.mark.parametrize("payload", [{1: "a", "1": "b"}, {1: "a"}, {"ok": {None: 1}}, {"ok": [{2.5: 1}]}])
def test_keys_that_are_not_str_are_refused(bg: BackgroundTaskComponent, payload: Any) -> None:
    error = refused(bg, "payload", lambda: bg.create("x", payload))
    assert error.rule.startswith("keys must be str, got a key of type ")


# -- abort messages --------------------------------------------------------------------------
@pytest.mark.parametrize("message", [42, b"bytes", ["why"], {"a": 1}, "x" * (MAX_MESSAGE_CHARS + 1), "x" * 10**7])
def test_abort_messages_must_be_short_strings(bg: BackgroundTaskComponent, message: Any) -> None:
    urn = bg.create("x", {})
    refused(bg, "message", lambda: bg.abort(urn, message))
    assert status_of(bg, urn) == TaskStatus.PENDING


def test_an_abort_message_at_the_limit_is_kept(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("x", {}, retain_for=-1)
    assert bg.abort(urn, "é" * MAX_MESSAGE_CHARS)
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.error is not None and task.error.message == "é" * MAX_MESSAGE_CHARS


# -- what held before, and must keep holding -------------------------------------------------
def test_like_wildcards_in_a_type_match_only_that_type(bg: BackgroundTaskComponent) -> None:
    types = ["a_c", "abc", "a%c", "aXc", "a\\c", "a\\_c", "%", "_"]
    urns = {t: bg.create(t, {}) for t in types}
    for t in types:
        assert [e.id for e in bg.query(task_type=t).entities] == [urns[t].rsplit(":", 1)[1]], t


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"sort_property": "dateCreated; DROP TABLE bgtask_tasks"}, "sort_property"),
    ({"sort_property": "date_created desc, id"}, "sort_property"),
    ({"sort_property": "(select 1)"}, "sort_property"),
    ({"task_status": "pending' OR '1'='1"}, "task_status"),
    ({"task_status": "pending; DELETE FROM bgtask_tasks"}, "task_status"),
    ({"sort_direction": "asc; DROP TABLE bgtask_tasks"}, "sort_direction"),
])
def test_sql_in_sort_or_status_is_refused(bg: BackgroundTaskComponent, kwargs: dict[str, Any], field: str) -> None:
    urn = bg.create("x", {})
    refused(bg, field, lambda: bg.query(**kwargs))
    readable(bg, urn)


def test_the_payload_cap_is_exact_to_the_byte(make_component: Callable[..., BackgroundTaskComponent]) -> None:
    bg = make_component(max_payload_bytes=1000)
    bg._ensure()
    fits = "é" * 499  # '"' + 998 bytes + '"': exactly 1000 bytes of JSON
    urn = bg.create("x", fits)
    readable(bg, urn)
    error = refused(bg, "payload", lambda: bg.create("x", fits + "a"))
    assert error.rule == "JSON is 1001 bytes, more than the maximum 1000"


def test_cursors_of_another_database_or_query_and_truncated_ones_are_refused(
    bg: BackgroundTaskComponent, celery_app_factory: Callable[..., Any], tmp_path: Any
) -> None:
    bg.create_many("c", [{}] * 3)
    cursor = bg.query(task_type="c", limit=1).cursor
    assert cursor is not None
    other = BackgroundTaskComponent(celery_app_factory(), database_url=f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        other.create_many("c", [{}] * 3)
        with pytest.raises(TaskValidationError, match=r"^cursor: signature does not match"):
            other.query(task_type="c", limit=1, cursor=cursor)
    finally:
        other.engine.dispose()
    for bad in (cursor[:-1], cursor[: len(cursor) // 2], cursor.split(".")[0] + ".", "." + cursor.split(".")[1]):
        refused(bg, "cursor", lambda: bg.query(task_type="c", limit=1, cursor=bad))  # noqa: B023
    refused(bg, "cursor", lambda: bg.query(task_type="d", limit=1, cursor=cursor))
    again = [bg.query(task_type="c", limit=1, cursor=cursor).entities for _ in range(2)]
    assert again[0] == again[1] and len(again[0]) == 1  # the same query may read a page twice


#: Equal under MariaDB's default collation (case, accents; every astral character weighs the
#: same), and different names all the same. (A trailing space, which even binary collation
#: ignores there, is refused in names.)
LOOKALIKES = ["abc", "ABC", " abc", "äbc", "Äbc", "😀", "😁"]


def test_types_that_differ_only_in_case_accents_spaces_or_emoji_are_different_types(
    bg: BackgroundTaskComponent,
) -> None:
    urns = {t: bg.create(t, {"t": t}) for t in LOOKALIKES}
    for t in LOOKALIKES:
        assert [e.type for e in bg.query(task_type=t).entities] == [t]
        readable(bg, urns[t])


def test_schedules_whose_ids_differ_only_in_case_or_spaces_are_different_schedules(
    bg: BackgroundTaskComponent, sched: TaskSchedulerComponent
) -> None:
    for position, schedule_id in enumerate(LOOKALIKES):
        sched.add_task(schedule_id, [{"nextTriggerTime": 1000 + position}], scheduled_jobs.nightly)
    listed = sched.tasks_info().tasks
    assert {k: [t.next_trigger_time for t in v] for k, v in listed.items()} == {
        schedule_id: [1000 + position] for position, schedule_id in enumerate(LOOKALIKES)
    }
    assert sched.remove_task("ABC")
    assert set(sched.tasks_info().tasks) == set(LOOKALIKES) - {"ABC"}
