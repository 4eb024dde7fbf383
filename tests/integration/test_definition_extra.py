"""A definition's input with a key its model lacks follows the model's ``extra`` setting, as
pydantic does: "ignore" drops it, "forbid" refuses it (naming it), "allow" keeps it; through
``trigger``, ``create`` and ``create_many``, a model instance of another class, and a
``continue_`` patch on a real worker."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from celery_bgtask import TaskContext, TaskStatus, TaskValidationError
from tests.helpers import wait_for

Extra = Literal["ignore", "forbid", "allow"]
SETTINGS: tuple[Extra, ...] = ("ignore", "forbid", "allow")


class Ignoring(BaseModel):
    a: int = 0  # pydantic's default: extra="ignore"


class Forbidding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: int = 0


class Allowing(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int = 0


MODELS: dict[Extra, type[BaseModel]] = {"ignore": Ignoring, "forbid": Forbidding, "allow": Allowing}


def _start(bg: Any, how: str, def_id: str, value: Any) -> str:
    if how == "trigger":
        return str(bg.trigger(def_id, value))
    if how == "create":
        return str(bg.create(def_id, value))
    [urn] = bg.create_many(def_id, [value])
    return str(urn)


def _define(bg: Any, extra: Extra, run: Any = None) -> str:
    def_id = f"extra-{extra}"
    bg.definition(id=def_id, input_model=MODELS[extra], retain_for=-1)(run or (lambda ctx: ctx.response.done()))
    return def_id


def _stored_or_refused(bg: Any, extra: Extra, how: str, value: Any) -> None:
    """Start one run with ``value`` (which carries the unknown key ``zz``) and check the record."""
    def_id = _define(bg, extra)
    if extra == "forbid":
        with pytest.raises(TaskValidationError, match=r"zz: Extra inputs are not permitted"):
            _start(bg, how, def_id, value)
        assert bg.query(task_type=def_id).entities == []  # nothing written
        return
    task = bg.get(_start(bg, how, def_id, value))
    assert task is not None
    assert task.payload == ({"a": 1} if extra == "ignore" else {"a": 1, "zz": 2})


@pytest.mark.parametrize("how", ["trigger", "create", "create_many"])
@pytest.mark.parametrize("extra", SETTINGS)
def test_a_dict_input_with_an_unknown_key(make_component: Any, extra: Extra, how: str) -> None:
    _stored_or_refused(make_component(), extra, how, {"a": 1, "zz": 2})


class Wider(BaseModel):
    """Another model that has the field ``zz`` the definition's models lack."""

    a: int = 0
    zz: int = 0


@pytest.mark.parametrize("how", ["trigger", "create", "create_many"])
@pytest.mark.parametrize("extra", SETTINGS)
def test_a_subclass_instance_with_a_field_the_model_lacks(make_component: Any, extra: Extra, how: str) -> None:
    # A subclass is an instance of the model, yet its extra field is what "extra" governs.
    sub = type(f"Sub{extra}", (MODELS[extra],), {"__annotations__": {"zz": int}, "zz": 0})
    _stored_or_refused(make_component(), extra, how, sub(a=1, zz=2))


@pytest.mark.parametrize("extra", SETTINGS)
def test_another_models_instance(make_component: Any, extra: Extra) -> None:
    _stored_or_refused(make_component(), extra, "trigger", Wider(a=1, zz=2))


@pytest.mark.parametrize("extra", SETTINGS)
def test_a_continue_patch_with_an_unknown_key(make_component: Any, worker: Any, extra: Extra) -> None:
    seen: list[dict[str, Any]] = []
    bg = make_component()

    def run(ctx: TaskContext[Any]) -> Any:
        seen.append(ctx.input.model_dump())
        if ctx.iteration == 1:
            return ctx.response.continue_({"a": 2, "zz": 3})
        return ctx.response.done(ctx.input.model_dump())

    urn = bg.trigger(_define(bg, extra, run), {"a": 1})
    with worker(bg.app):
        wait_for(lambda: (t := bg.get(urn)) is not None and t.status.is_terminal, what="the run to finish")
    task = bg.get(urn)
    assert task is not None
    if extra == "forbid":
        assert task.status is TaskStatus.FAILED and task.error is not None
        assert task.error.name == "TaskValidationError"
        assert "zz: Extra inputs are not permitted" in task.error.message
        assert task.payload == {"a": 1} and len(seen) == 1  # the bad patch was not committed
        return
    kept = {"a": 2} if extra == "ignore" else {"a": 2, "zz": 3}
    assert task.status is TaskStatus.SUCCESS
    assert task.payload == kept  # the stored input, as pydantic validated it
    assert seen == [{"a": 1}, kept] and task.result == kept
