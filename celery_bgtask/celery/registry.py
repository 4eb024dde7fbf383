"""Which ``Runner`` serves which Celery app: kept beside the app (weakly), never on it."""

from __future__ import annotations

import weakref
from typing import Any

from celery import Celery

from .worker import Runner

_installed: weakref.WeakKeyDictionary[Celery, Runner] = weakref.WeakKeyDictionary()


def runner_of(app: Any) -> Runner | None:
    """The runner ``install`` made for ``app``, if any."""
    try:
        return _installed.get(app)
    except TypeError:  # not something a weak reference can name (None, say)
        return None


def runners() -> list[Runner]:
    """Every runner of this process (the signals of pool processes concern them all)."""
    return list(_installed.values())


def remember(app: Celery, runner: Runner) -> None:
    _installed[app] = runner
