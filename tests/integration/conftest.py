"""Fixtures of the integration tier that several modules share (a module may define its own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery

from celery_bgtask import BackgroundTaskComponent, TaskSchedulerComponent
from tests.helpers import take_messages


@pytest.fixture
def bg(make_component: Callable[..., BackgroundTaskComponent], queue_name: str) -> Iterator[BackgroundTaskComponent]:
    """A migrated component over this test's database, with no worker; its queue is drained after."""
    component = make_component()
    component.ensure_ready()
    yield component
    take_messages(component.app, queue_name)  # leave no messages behind on the shared Redis


@pytest.fixture
def sched(bg: BackgroundTaskComponent) -> TaskSchedulerComponent:
    """A scheduler on ``bg``'s app, keeping its firing records forever."""
    return TaskSchedulerComponent(bg.app, retain_for=-1)


@pytest.fixture
def make_scheduler(make_component: Callable[..., Any]) -> Callable[..., TaskSchedulerComponent]:
    """A scheduler on the app of a fresh ``make_component`` component (firings kept forever)."""

    def make(app: Celery | None = None, retain_for: int = -1, **settings: Any) -> TaskSchedulerComponent:
        return TaskSchedulerComponent(make_component(app, **settings).app, retain_for=retain_for)

    return make
