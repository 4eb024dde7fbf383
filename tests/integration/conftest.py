"""Fixtures of the integration tier that several modules share (a module may define its own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from celery_bgtask import BackgroundTaskComponent, TaskSchedulerComponent
from tests.helpers import take_messages


@pytest.fixture
def bg(make_component: Callable[..., BackgroundTaskComponent], queue_name: str) -> Iterator[BackgroundTaskComponent]:
    """A migrated component over this test's database, with no worker; its queue is drained after."""
    component = make_component()
    component._ensure()
    yield component
    take_messages(component.app, queue_name)  # leave no messages behind on the shared Redis


@pytest.fixture
def sched(bg: BackgroundTaskComponent) -> TaskSchedulerComponent:
    """A scheduler on ``bg``'s app, keeping its firing records forever."""
    return TaskSchedulerComponent(bg.app, retain_for=-1)
