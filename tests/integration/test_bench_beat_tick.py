"""The beat-tick bench measures what it says (no timing is checked): it runs here on SQLite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import beat_tick
from celery_bgtask import SCHEDULED_TYPE, TaskSchedulerComponent
from celery_bgtask.beat import Scheduler
from tests.helpers import require_service


def test_beat_tick_bench_fires_ten_due_per_measured_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The beat bench times what it says: each measured tick fires exactly the 10 it made due."""

    require_service("Redis", "127.0.0.1", 6379)
    monkeypatch.setattr(beat_tick, "SCHEDULES", 50)
    monkeypatch.setattr(beat_tick, "RUNS", 3)
    queue = f"bgtask-bench-test-{os.getpid()}"
    app = beat_tick.make_app(queue, f"sqlite:///{tmp_path / 'beat.sqlite3'}")
    sched = TaskSchedulerComponent(app, retain_for=-1)
    try:
        beat_tick.fill(sched)
        assert len(sched.tasks_info().tasks) == 50
        times = beat_tick.time_ticks(Scheduler(app), sched)
        assert len(times) == 3
        fired = sched.background.query(task_type=SCHEDULED_TYPE, limit=100).entities
        assert len(fired) == 3 * beat_tick.DUE
        assert len({t.payload["scheduleId"] for t in fired}) == 3 * beat_tick.DUE
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        sched.close()
