"""Fixtures shared by the integration tests of scheduled tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery

from celery_bgtask import TaskSchedulerComponent


@pytest.fixture
def make_scheduler(make_component: Callable[..., Any]) -> Callable[..., TaskSchedulerComponent]:
    """A scheduler on the app of a fresh ``make_component`` component (firings kept forever)."""

    def make(app: Celery | None = None, retain_for: int = -1, **settings: Any) -> TaskSchedulerComponent:
        return TaskSchedulerComponent(make_component(app, **settings).app, retain_for=retain_for)

    return make
