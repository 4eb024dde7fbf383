"""What the commands print: rich tables for people, TWIN JSON (``--json``) for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..models import BackgroundTask


def twin(task: BackgroundTask[Any, Any]) -> dict[str, Any]:
    """A record as TWIN JSON: camelCase names, ISO instants, no empty fields."""
    return task.model_dump(mode="json", by_alias=True, exclude_none=True)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table on stdout, wide enough for 32-hex ids whatever the terminal (tests run without one)."""
    out = Table(title=title)
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    Console(width=200).print(out)


def short_json(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def task_rows(tasks: Sequence[BackgroundTask[Any, Any]]) -> list[list[Any]]:
    return [[t.id, t.type, t.status.value, t.date_created.isoformat(timespec="seconds"),
             None if t.date_completed is None else t.date_completed.isoformat(timespec="seconds")] for t in tasks]


TASK_COLUMNS = ("id", "type", "status", "created", "completed")


def show_task(task: BackgroundTask[Any, Any]) -> None:
    data = twin(task)
    rows = [[name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)]
            for name, value in data.items()]
    table(None, ("field", "value"), rows)


def instant(ms: int | None) -> str:
    """Epoch milliseconds as an ISO instant (UTC), to the second."""
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
