"""Handler functions the integration tests register by dotted path.

In-process workers share this module with the test, so plain module state is enough to
observe what ran.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from pydantic import BaseModel

runs: Counter[str] = Counter()
lifecycle: list[str] = []
gate = threading.Event()
_lock = threading.Lock()


def echo(payload: Any) -> dict[str, Any]:
    return {"echo": payload}


def boom(payload: Any) -> None:
    raise ValueError("boom")


def no_payload() -> str:
    return "ran"


def counted(payload: dict[str, Any]) -> int:
    """Counts runs per ``payload['key']``; fails while the count is <= ``payload['fail_times']``."""
    key = payload["key"]
    with _lock:
        runs[key] += 1
        n = runs[key]
    if n <= payload.get("fail_times", 0):
        raise RuntimeError(f"attempt {n} fails")
    return n


def gated(payload: dict[str, Any]) -> str:
    """Blocks until the test opens ``gate`` (so a run is observably in progress)."""
    with _lock:
        runs[payload["key"]] += 1
    if not gate.wait(30):
        raise TimeoutError("gate never opened")
    return "passed"


class Point(BaseModel):
    x: int
    y: int


def typed(point: Point) -> dict[str, int]:
    assert isinstance(point, Point)
    return {"sum": point.x + point.y}


def initialise() -> None:
    lifecycle.append("initialise")


def shutdown() -> None:
    lifecycle.append("shutdown")


def tracked() -> str:
    lifecycle.append("run")
    return "ok"


def mark_unpickled(tag: str) -> str:
    """Called when a ``Unpickled`` is loaded from a pickle: the test sees it in ``lifecycle``."""
    lifecycle.append(tag)
    return tag


class Unpickled:
    """An object whose unpickling leaves a trace, as a hostile pickle would run code."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return mark_unpickled, ("unpickled",)


def nested(payload: dict[str, Any]) -> Any:
    """Returns a value nested ``payload['depth']`` levels deep."""
    from tests.helpers import deep

    return deep(payload["depth"])


def undecodable(payload: Any) -> None:
    """Fails with a message holding a lone surrogate, as ``os.fsdecode`` of a bad file name gives."""
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    raise OSError(f"cannot open {name}")
