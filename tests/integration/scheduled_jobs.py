"""Scheduled-task callbacks for the in-process scheduler tests (importable by name)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

from celery import shared_task

calls: Counter[str] = Counter()
_lock = threading.Lock()


def _count(name: str) -> int:
    with _lock:
        calls[name] += 1
        return calls[name]


def nightly() -> dict[str, int]:
    return {"run": _count("nightly")}


def other() -> None:
    _count("other")


def explode() -> None:
    _count("explode")
    raise RuntimeError("the nightly export broke")


def not_json() -> object:
    _count("not_json")
    return object()


class Jobs:
    @staticmethod
    def static_job() -> None:
        _count("static_job")

    def run(self) -> None:
        """A bound method: not importable by name."""


@shared_task(name="tests.integration.scheduled_jobs.celery_job")
def celery_job() -> str:
    _count("celery_job")
    return "sent and run"


#: The arguments each run of ``entry_job`` got.
entry_calls: list[tuple[list[Any], dict[str, Any]]] = []


@shared_task(name="tests.integration.scheduled_jobs.entry_job")
def entry_job(*args: Any, **kwargs: Any) -> None:
    """A beat_schedule entry's task: records the args and kwargs the entry gave."""
    with _lock:
        entry_calls.append((list(args), kwargs))


not_callable = 42

#: A refused function (``os.getpid``) re-exported under a harmless-looking name.
process_id = os.getpid


def make_closure() -> Any:
    def inner() -> None:
        pass

    return inner
