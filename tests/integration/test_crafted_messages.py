"""Messages crafted straight onto the broker under our task names, on a real worker (Redis
with the server databases, memory with SQLite): each is logged once and dropped (acked,
never redelivered), raises nothing in the worker, runs no handler and changes no record;
the worker goes on to run a real task sent after them."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery

from celery_bgtask import BackgroundTaskComponent, TaskStatus
from celery_bgtask.celery import RUN_MANY_TASK, RUN_TASK
from celery_bgtask.config import JSON_NAMES
from celery_bgtask.ids import new_id, parse_task_id, to_urn
from tests.helpers import set_fields, status_of, take_messages, wait_for
from tests.integration import handlers

H = "tests.integration.handlers"
#: The attempt the target record is at: only a message for that attempt may claim it.
AT = 3
TARGET = "0" * 31 + "1"  # stands for the target record's id in the cases below
FOREIGN = new_id()  # well formed, and no record has it
STOP = "0" * 32  # the id of the wake-ups the test worker sends itself to stop

#: (what, args, kwargs, how many log lines it gives) of ``celery_bgtask.run``.
RUN_CASES: list[tuple[str, list[Any], dict[str, Any], int]] = [
    ("bogus id", ["not-an-id", AT], {"task_type": "counted"}, 1),
    ("non-hex id", ["z" * 32, AT], {"task_type": "counted"}, 1),
    ("a URN of another namespace", [f"background-task:other:{TARGET}", AT], {"task_type": "counted"}, 1),
    ("our own URN (messages carry bare ids)", [to_urn(TARGET), AT], {"task_type": "counted"}, 1),
    ("a foreign id", [FOREIGN, 0], {"task_type": "counted"}, 1),
    ("a foreign id, no type", [FOREIGN, 0], {}, 1),
    ("an extra argument", [TARGET, AT, "counted"], {}, 1),
    ("two extra arguments", [TARGET, AT, "counted", 1], {}, 1),
    ("an unknown keyword", [TARGET, AT], {"task_type": "counted", "retry": True}, 1),
    ("no arguments", [], {}, 1),
    ("no attempt", [TARGET], {"task_type": "counted"}, 1),
    ("id a list", [[TARGET], AT], {"task_type": "counted"}, 1),
    ("id a dict", [{"id": TARGET}, AT], {"task_type": "counted"}, 1),
    ("id None", [None, AT], {"task_type": "counted"}, 1),
    ("id a huge int", [10**40, AT], {"task_type": "counted"}, 1),
    ("attempt a list", [TARGET, [AT]], {"task_type": "counted"}, 1),
    ("attempt a dict", [TARGET, {"attempt": AT}], {"task_type": "counted"}, 1),
    ("attempt None", [TARGET, None], {"task_type": "counted"}, 1),
    ("attempt a huge int", [TARGET, 10**40], {"task_type": "counted"}, 1),
    ("attempt past the column", [TARGET, 2**31], {"task_type": "counted"}, 1),
    ("attempt a str", [TARGET, str(AT)], {"task_type": "counted"}, 1),
    ("attempt a float", [TARGET, float(AT)], {"task_type": "counted"}, 1),
    ("attempt a bool", [TARGET, True], {"task_type": "counted"}, 1),
    ("attempt negative", [TARGET, -1], {"task_type": "counted"}, 1),
    ("an earlier attempt", [TARGET, AT - 1], {"task_type": "counted"}, 1),
    ("a later attempt", [TARGET, AT + 1], {"task_type": "counted"}, 1),
    ("attempt 0", [TARGET, 0], {"task_type": "counted"}, 1),
    ("a wrong attempt, no type", [TARGET, AT - 1], {}, 1),
    ("the type of another handler", [TARGET, AT], {"task_type": "other"}, 1),
    ("a type with no handler", [TARGET, AT], {"task_type": "nope"}, 1),
    ("a type that is not a str", [TARGET, AT], {"task_type": 5}, 1),
]

#: The same for a chunk, ``celery_bgtask.run_many``.
MANY_CASES: list[tuple[str, list[Any], dict[str, Any], int]] = [
    ("items a dict", [{"id": TARGET}], {"task_type": "counted"}, 1),
    ("items None", [None], {"task_type": "counted"}, 1),
    ("items a huge int", [10**40], {"task_type": "counted"}, 1),
    ("no items", [[]], {"task_type": "counted"}, 1),
    ("no arguments", [], {}, 1),
    ("an extra argument", [[[TARGET, AT]], "counted"], {}, 1),
    ("an unknown keyword", [[[TARGET, AT]]], {"task_type": "counted", "x": 1}, 1),
    ("a type that is not a str", [[[TARGET, AT]]], {"task_type": ["counted"]}, 1),
    ("more items than a chunk holds", [[[FOREIGN, 0]] * 1001], {"task_type": "counted"}, 1),
    ("malformed items", [[["zz", 0], [None, None], [TARGET], [TARGET, str(AT)], [TARGET, AT, "x"],
                          to_urn(TARGET), [f"background-task:other:{TARGET}", AT], [TARGET, 10**40]]],
     {"task_type": "counted"}, 8),
    ("wrong attempts and a foreign id", [[[TARGET, AT - 1], [TARGET, AT + 1], [FOREIGN, 0]]],
     {"task_type": "counted"}, 3),
    ("the type of another handler", [[[TARGET, AT]]], {"task_type": "other"}, 1),
]


def _bind(value: Any, bare: str) -> Any:
    """``value`` with ``TARGET`` (also inside strings, lists and dicts) replaced by the real id."""
    if isinstance(value, str):
        return value.replace(TARGET, bare)
    if isinstance(value, list):
        return [_bind(v, bare) for v in value]
    if isinstance(value, dict):
        return {k: _bind(v, bare) for k, v in value.items()}
    return value


def _said(caplog: pytest.LogCaptureFixture, *skip: str) -> list[logging.LogRecord]:
    """What our worker code said about wake-ups (not the sweeper), leaving out lines naming a ``skip`` id."""
    names = ("celery_bgtask.celery.messages", "celery_bgtask.celery.worker", "celery_bgtask.celery.report")
    return [r for r in caplog.records if r.name in names and r.levelno >= logging.INFO
            and not r.getMessage().startswith(tuple(f"task {task_id}" for task_id in skip))]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def _target(make_component: Callable[..., BackgroundTaskComponent], queue: str) -> tuple[BackgroundTaskComponent, str]:
    """A component with two handler types and one pending, due record at attempt ``AT`` whose
    own wake-up has been taken off the queue: only a crafted message could reach it."""
    # No sweeper republishes it while the test runs: its wake-up counts as sent an hour ahead.
    bg = make_component(redeliver_after=3_600_000)
    bg.register_handler("counted", H, "counted")
    bg.register_handler("other", H, "counted")
    urn = bg.create("counted", {"key": "target"}, retain_for=-1)
    assert len(take_messages(bg.app, queue)) == 1
    set_fields(bg, urn, attempt=AT)
    return bg, parse_task_id(urn)


def _leftover(app: Celery, queue: str) -> list[Any]:
    """The ids of the messages still in ``queue`` (an unacked one is back there once the worker is gone)."""
    out = []
    with app.connection_for_write() as conn:
        while (message := conn.default_channel.basic_get(queue, no_ack=True)) is not None:
            out.append(message.headers.get("id"))
    return out


def _send_each(bg: BackgroundTaskComponent, name: str, cases: list[tuple[str, list[Any], dict[str, Any], int]],
               bare: str, queue: str, caplog: pytest.LogCaptureFixture) -> None:
    expected = 0
    for what, args, kwargs, lines in cases:
        bg.app.send_task(name, args=_bind(args, bare), kwargs=_bind(kwargs, bare), queue=queue)
        expected += lines
        wait_for(lambda n=expected: len(_said(caplog)) >= n, what=f"the worker to log {what!r}")
        assert len(_said(caplog)) == expected, (what, [r.getMessage() for r in _said(caplog)])


@pytest.mark.parametrize(("name", "cases"), [(RUN_TASK, RUN_CASES), (RUN_MANY_TASK, MANY_CASES)],
                         ids=["run", "run_many"])
def test_crafted_messages_are_logged_and_dropped(make_component: Any, worker: Any, queue_name: str,
                                                 caplog: pytest.LogCaptureFixture, name: str,
                                                 cases: list[tuple[str, list[Any], dict[str, Any], int]]) -> None:
    caplog.set_level(logging.INFO, logger="celery_bgtask")
    bg, bare = _target(make_component, queue_name)
    before = dataclasses.asdict(bg.store.get(bare))
    with worker(bg.app):
        _send_each(bg, name, cases, bare, queue_name, caplog)
        assert _errors(caplog) == []  # nothing raised in the worker (Celery logs that as an error)
        assert dataclasses.asdict(bg.store.get(bare)) == before and handlers.runs["target"] == 0
        # The worker goes on: a real task runs, and so does the target once a message has its
        # type and attempt (so the checks above, not anything else, kept it from running).
        after = bg.create("counted", {"key": "after"}, retain_for=-1)
        wait_for(lambda: status_of(bg, after) == TaskStatus.SUCCESS, what="a real task after them")
        bg.app.send_task(RUN_TASK, args=[bare, AT], kwargs={"task_type": "counted"}, queue=queue_name)
        wait_for(lambda: status_of(bg, bare) == TaskStatus.SUCCESS, what="the target, from the right message")
    # Each was logged once: none was redelivered, none is left unacked.
    # The target's 2 lines (processing, success); not the real task's, nor the worker's stop wake-ups.
    assert len(_said(caplog, parse_task_id(after), STOP)) == sum(n for *_, n in cases) + 2
    assert set(_leftover(bg.app, queue_name)) <= {STOP}
    assert handlers.runs["target"] == 1 and _errors(caplog) == []


@pytest.fixture(autouse=True)
def _reset_handlers() -> None:
    handlers.runs.clear()
    handlers.lifecycle.clear()


def test_a_real_id_with_a_wrong_attempt_never_runs_or_changes(make_component: Any, worker: Any,
                                                              queue_name: str) -> None:
    bg, bare = _target(make_component, queue_name)
    before = dataclasses.asdict(bg.store.get(bare))
    with worker(bg.app):
        for attempt in (0, AT - 1, AT + 1, 1000):
            bg.app.send_task(RUN_TASK, args=[bare, attempt], kwargs={"task_type": "counted"}, queue=queue_name)
        bg.app.send_task(RUN_MANY_TASK, args=[[[bare, AT + 1], [bare, AT - 1]]], kwargs={"task_type": "counted"},
                         queue=queue_name)
        marker = str(uuid.uuid4())
        after = bg.create("counted", {"key": marker}, retain_for=-1)
        wait_for(lambda: status_of(bg, after) == TaskStatus.SUCCESS, what="a real task sent after them")
        assert dataclasses.asdict(bg.store.get(bare)) == before
    assert handlers.runs["target"] == 0


#: Bodies that are not Celery's ``[args, kwargs, embed]``, or whose args / kwargs have the wrong type.
RAW_BODIES: list[Any] = [
    None, 10**40, "text", {"task_id": TARGET}, [], [TARGET, AT], [{"id": TARGET}, {}, {}],
    [[TARGET, AT], [["task_type", "counted"]], {}], [None, None, None], [[TARGET, AT], {"task_type": "counted"}],
]


def _publish_raw(app: Celery, name: str, body: Any, queue: str, serializer: str = "json") -> None:
    """A message with Celery's headers for ``name`` and ``body`` as it is, serialised with ``serializer``."""
    template = app.amqp.create_task_message(str(uuid.uuid4()), name, (), {})
    with app.producer_or_acquire() as producer:
        producer.publish(body, routing_key=queue, exchange="", serializer=serializer, headers=template.headers,
                         declare=[app.amqp.queues[queue]], **template.properties)


@pytest.mark.parametrize("name", [RUN_TASK, RUN_MANY_TASK])
def test_bodies_that_are_not_celerys_are_dropped(make_component: Any, worker: Any, queue_name: str,
                                                 caplog: pytest.LogCaptureFixture, name: str) -> None:
    caplog.set_level(logging.INFO, logger="celery_bgtask")
    bg, bare = _target(make_component, queue_name)
    before = dataclasses.asdict(bg.store.get(bare))
    with worker(bg.app):
        for body in RAW_BODIES:
            _publish_raw(bg.app, name, _bind(body, bare), queue_name)
        after = bg.create("counted", {"key": "after"}, retain_for=-1)
        wait_for(lambda: status_of(bg, after) == TaskStatus.SUCCESS, what="a real task after them")
        assert dataclasses.asdict(bg.store.get(bare)) == before and handlers.runs["target"] == 0
    said = _said(caplog, STOP, parse_task_id(after))
    # Each logged once, and none stopped the worker (Celery's own strategy raised on some,
    # in the consumer: "Unrecoverable error", and the worker was gone).
    assert len(said) == len(RAW_BODIES) and _errors(caplog) == [], [r.getMessage() for r in said]
    assert set(_leftover(bg.app, queue_name)) <= {STOP}


def _config_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "celery_bgtask.config" and r.levelno == logging.WARNING]


def test_the_installed_app_takes_json_only(celery_app_factory: Any, make_component: Any,
                                           caplog: pytest.LogCaptureFixture) -> None:
    app = celery_app_factory()
    with caplog.at_level(logging.WARNING, logger="celery_bgtask.config"):
        make_component(app)
    assert set(app.conf.accept_content) <= JSON_NAMES
    assert app.conf.result_accept_content is None or set(app.conf.result_accept_content) <= JSON_NAMES
    assert [app.tasks[name].serializer for name in (RUN_TASK, RUN_MANY_TASK)] == ["json", "json"]
    assert _config_warnings(caplog) == []


def test_an_app_that_accepts_pickle_is_warned_and_left_alone(celery_app_factory: Any, make_component: Any,
                                                            queue_name: str, caplog: pytest.LogCaptureFixture) -> None:
    app = celery_app_factory(accept_content=["json", "pickle"], result_accept_content=["pickle"],
                             task_serializer="pickle")
    with caplog.at_level(logging.WARNING, logger="celery_bgtask.config"):
        bg = make_component(app)
    warned = _config_warnings(caplog)
    assert len(warned) == 2
    assert warned[0].startswith("app.conf.accept_content allows pickle besides JSON")
    assert warned[1].startswith("app.conf.result_accept_content allows pickle besides JSON")
    assert app.conf.accept_content == ["json", "pickle"]  # the user's own tasks may need it
    # Ours stay JSON whatever the app's task_serializer, and so do the messages they are sent.
    assert [app.tasks[name].serializer for name in (RUN_TASK, RUN_MANY_TASK)] == ["json", "json"]
    bg.register_handler("counted", H, "counted")
    bg.create("counted", {"key": "k"})
    bg.create_many("counted", [{"key": "k"}] * 2, chunk_size=2)
    with app.connection_for_write() as conn:
        types = []
        while (message := conn.default_channel.basic_get(queue_name, no_ack=True)) is not None:
            types.append(message.content_type)
    assert types == ["application/json"] * 2


@pytest.mark.parametrize("accept", [None, ["json", "pickle"]], ids=["default", "app-accepts-pickle"])
def test_a_pickled_message_is_dropped_unread(celery_app_factory: Any, make_component: Any, worker: Any,
                                             queue_name: str, caplog: pytest.LogCaptureFixture,
                                             accept: list[str] | None) -> None:
    caplog.set_level(logging.INFO, logger="celery_bgtask")
    app = celery_app_factory(**({} if accept is None else {"accept_content": accept}))
    bg, bare = _target(lambda **settings: make_component(app, **settings), queue_name)
    before = dataclasses.asdict(bg.store.get(bare))
    with worker(bg.app):
        # Had any been read, the first two would run the target and the third leave a trace.
        _publish_raw(app, RUN_TASK, [[bare, AT], {"task_type": "counted"}, None], queue_name, "pickle")
        _publish_raw(app, RUN_MANY_TASK, [[[[bare, AT]]], {"task_type": "counted"}, None], queue_name, "pickle")
        _publish_raw(app, RUN_TASK, [[handlers.Unpickled(), AT], {}, None], queue_name, "pickle")
        after = bg.create("counted", {"key": "after"}, retain_for=-1)
        wait_for(lambda: status_of(bg, after) == TaskStatus.SUCCESS, what="a real task after them")
        assert dataclasses.asdict(bg.store.get(bare)) == before and handlers.runs["target"] == 0
    assert "unpickled" not in handlers.lifecycle
    said = [r.getMessage() for r in _said(caplog, STOP, parse_task_id(after))]
    assert len(said) == 3 and all("content type 'application/x-python-serialize'" in m for m in said), said
    assert _errors(caplog) == [] and set(_leftover(app, queue_name)) <= {STOP}
