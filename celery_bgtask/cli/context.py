"""Finding the app's component, and turning bad input into one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from ..celery.registry import runner_of
from ..component import BackgroundTaskComponent
from ..errors import BgTaskError

P = ParamSpec("P")
R = TypeVar("R")

#: Exit codes: 0 done, 1 the command ran but the answer is "no" (nothing changed, a task failed),
#: 2 bad input (an unknown or malformed id, a bad option, invalid JSON, no component on the app).
NO, BAD_INPUT = 1, 2


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    """One line on stderr, then exit; never a traceback."""
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def component(ctx: click.Context) -> BackgroundTaskComponent:
    """The ``BackgroundTaskComponent`` the ``-A`` module built on its Celery app."""
    app = getattr(ctx.obj, "app", None)
    runner = runner_of(app)
    host = None if runner is None else runner.host
    if not isinstance(host, BackgroundTaskComponent):
        fail("no BackgroundTaskComponent on this Celery app: pass -A with the module that builds one")
    return host


def parse_json(option: str, text: str | None) -> Any:
    """``--input`` and the like: JSON text, or a clear error naming the option."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        fail(f"{option}: not valid JSON ({e})")


def clean_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """A ``BgTaskError`` (``TaskValidationError`` names the field and the rule) becomes exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except BgTaskError as e:
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    return wrapper
