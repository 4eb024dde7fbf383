"""The state machine on the memory store: milliseconds, no services."""

from __future__ import annotations

import pytest

from celery_bgtask.store.base import TaskStore
from celery_bgtask.store.memory import MemoryTaskStore
from tests.suites.state_machine import StateMachineSuite


@pytest.fixture
def store() -> TaskStore:
    return MemoryTaskStore()


class TestMemoryStore(StateMachineSuite):
    pass

