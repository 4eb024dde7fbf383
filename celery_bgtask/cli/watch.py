"""``watch ID``: a live display of one task until it finishes, then its outcome."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..component import BackgroundTaskComponent
from ..ids import parse_task_id
from ..models import BackgroundTask, TaskStatus
from ..timeutil import now_ms
from .context import fail
from .render import short_json

FINISHED = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED})


def _panel(task: BackgroundTask[Any, Any], iterations: int) -> Table:
    """Status, iteration, elapsed time and the current input (a definition's patches merged in)."""
    elapsed = (now_ms() - int(task.date_created.timestamp() * 1000)) / 1000
    view = Table(title=f"{task.type} {task.id}", show_header=False)
    view.add_column("what")
    view.add_column("value", overflow="fold")
    view.add_row("status", task.status.value)
    view.add_row("iteration", str(iterations))
    view.add_row("elapsed", f"{max(elapsed, 0.0):.1f} s")
    view.add_row("input", short_json(task.payload))
    return view


def follow(bg: BackgroundTaskComponent, task_id: str, interval: float, quiet: bool) -> BackgroundTask[Any, Any]:
    """Poll the record (one primary-key read) until it is finished; return it as finished."""
    bare = parse_task_id(task_id)
    console = Console(width=200, quiet=quiet)
    with Live(console=console, auto_refresh=False) as live:
        while True:
            task = bg.get(bare)
            record = bg.store.get(bare)
            if task is None or record is None:
                fail(f"task {bare}: no such record (removed, or never created)")
            live.update(_panel(task, record.iterations), refresh=True)
            if task.status in FINISHED:
                return task
            time.sleep(interval)  # a poll interval, not a wait in place of a condition
