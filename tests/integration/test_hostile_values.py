"""Arguments whose ``__repr__`` raises, or is huge, still get a ``TaskValidationError`` and write nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from celery_bgtask import BackgroundTaskComponent, TaskContext, TaskSchedulerComponent, TaskValidationError
from tests.integration import scheduled_jobs


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


class BrokenInt(int):
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


class BrokenStr(str):
    __slots__ = ()

    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


def _run(ctx: TaskContext[Any]) -> Any:
    return ctx.response.done(None)


CALLS: list[tuple[str, Callable[[BackgroundTaskComponent, TaskSchedulerComponent], Any]]] = [
    ("task_type", lambda bg, _: bg.create(BrokenRepr())),
    ("retry_count", lambda bg, _: bg.create("t", retry_count=BrokenRepr())),
    ("retry_count", lambda bg, _: bg.create("t", retry_count=BrokenInt(-1))),
    ("retry_interval", lambda bg, _: bg.create("t", retry_interval=BrokenInt(0))),
    ("retain_for", lambda bg, _: bg.create("t", retain_for=BrokenInt(-5))),
    ("payloads[0].retry_count", lambda bg, _: bg.create_many("t", [1], retry_count=BrokenRepr())),
    ("task_id", lambda bg, _: bg.get(BrokenStr("not-an-id"))),
    ("task_status", lambda bg, _: bg.query(task_status=BrokenRepr())),
    ("sort_property", lambda bg, _: bg.query(sort_property=BrokenStr("nope"))),
    ("sort_direction", lambda bg, _: bg.query(sort_direction=BrokenRepr())),
    ("limit", lambda bg, _: bg.query(limit=BrokenInt(0))),
    ("module", lambda bg, _: bg.register_handler("t", BrokenStr("not a path"))),
    ("title", lambda bg, _: bg.definition(id="d", title=BrokenStr(" "))(_run)),
    ("delay", lambda bg, _: bg.trigger("defined", delay=BrokenRepr())),
    ("times[0].intervalDays", lambda _, s: s.add_task("s", [{"intervalDays": BrokenInt(0)}], scheduled_jobs.nightly)),
    ("task_callback", lambda _, s: s.add_task("s", [{"intervalDays": 1}], BrokenStr("no colon"))),
]


@pytest.mark.parametrize(("field", "call"), CALLS, ids=[f"{n}-{f}" for n, (f, _) in enumerate(CALLS)])
def test_a_value_whose_repr_raises_gets_a_validation_error(
    make_component: Callable[..., BackgroundTaskComponent], field: str, call: Any
) -> None:
    bg = make_component()
    sched = TaskSchedulerComponent(bg.app)
    bg.definition(id="defined")(_run)
    with pytest.raises(TaskValidationError) as err:
        call(bg, sched)
    assert err.value.field == field
    assert "(its repr raised)" in err.value.rule
    assert bg.query().entities == [] and sched.tasks_info().tasks == {}


def test_a_huge_value_is_cut_short_in_the_message(make_component: Callable[..., BackgroundTaskComponent]) -> None:
    bg = make_component()
    with pytest.raises(TaskValidationError) as err:
        bg.create("t", retry_count="9" * 100_000)
    assert err.value.rule.startswith("must be an int >= 0, got '9999") and len(str(err.value)) < 300
    assert bg.query().entities == []


@pytest.mark.parametrize("backend", ["postgres"])  # trust authentication: any password is accepted
def test_the_settings_hide_the_password_and_the_component_connects_with_it(
    make_component: Callable[..., BackgroundTaskComponent], database_url: str
) -> None:
    with_password = make_url(database_url).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    bg = make_component(database_url=with_password)
    assert "s3cr3t-pw" not in repr(bg.settings) and "s3cr3t-pw" not in str(bg.settings)
    assert ":***@" in repr(bg.settings)
    assert bg.engine.url.password == "s3cr3t-pw"
    urn = bg.create("t", {"n": 1})
    task = bg.get(urn)
    assert task is not None and task.payload == {"n": 1}
