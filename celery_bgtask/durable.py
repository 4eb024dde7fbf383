"""``@bg.task``: the drop-in for ``@app.task``. The decorated function becomes the handler of
a task type, and ``.create()`` / ``.delay()`` make durable records of it, so existing Celery
code changes its decorator and keeps its call sites."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar

from celery import Celery
from celery.result import AsyncResult

from .ids import parse_task_id

R = TypeVar("R")

#: The ``create`` keywords a decorator may default and a call may override.
OPTIONS = ("retry_count", "retry_interval", "retain_for")


class Creator(Protocol):
    """What a durable task needs of the component: its app and ``create`` / ``create_many``."""

    app: Celery

    @property
    def create(self) -> Callable[..., str]: ...

    @property
    def create_many(self) -> Callable[..., list[str]]: ...


class DurableTask(Generic[R]):
    """A handler function and its type. Calling it runs the function here, as a Celery task does."""

    def __init__(self, creator: Creator, task_type: str, fn: Callable[..., R], defaults: dict[str, Any]) -> None:
        self.creator = creator
        self.type = task_type
        self.fn = fn
        self.defaults = defaults
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", task_type)
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self.fn(*args, **kwargs)

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **{k: v for k, v in overrides.items() if v is not None or k not in OPTIONS}}

    def create(self, payload: Any = None, *, retry_count: int | None = None,
               retry_interval: int | timedelta | None = None, retain_for: int | timedelta | None = None,
               connection: Any = None) -> str:
        """``bg.create(type, payload, ...)`` with the decorator's options as defaults; the URN."""
        options = self._options(dict(retry_count=retry_count, retry_interval=retry_interval, retain_for=retain_for,
                                     connection=connection))
        return self.creator.create(self.type, payload, **options)

    def create_many(self, payloads: Sequence[Any], *, chunk_size: int = 1, connection: Any = None,
                    **overrides: Any) -> list[str]:
        """``bg.create_many(type, payloads, ...)`` with the decorator's options as defaults."""
        options = self._options({**overrides, "chunk_size": chunk_size, "connection": connection})
        return self.creator.create_many(self.type, payloads, **options)

    def delay(self, payload: Any = None, **overrides: Any) -> AsyncResult:
        """``create``, as Celery's ``delay``: an ``AsyncResult`` whose id is the record's 32-hex id
        (its state and result need ``result_backend = "bgtask://"``)."""
        return AsyncResult(parse_task_id(self.create(payload, **overrides)), app=self.creator.app)

    def __repr__(self) -> str:
        return f"<durable task {self.type!r}>"
