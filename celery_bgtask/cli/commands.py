"""The ``bgtask`` command group: each command calls the record API and prints the answer."""

from __future__ import annotations

from collections.abc import Callable

import click

from ..models import ScheduledTaskTime, TaskStatus
from ..scheduler import TaskSchedulerComponent, scheduler_for
from ..store.migrate import migrate as migrate_schema
from ..store.sql.stats import read_stats
from ..timeutil import now_ms
from .context import BAD_INPUT, NO, clean_errors, component, fail, parse_json
from .render import TASK_COLUMNS, emit_json, instant, show_task, table, task_rows, twin
from .watch import follow

json_option = click.option("--json", "as_json", is_flag=True, help="Print TWIN JSON instead of a table.")


@click.group(name="bgtask")
def bgtask() -> None:
    """celery_bgtask: durable task records (list, show, cancel, stats, watch, ...)."""


@bgtask.command(name="list")
@click.option("--type", "task_type", default=None)
@click.option("--status", default=None, help="pending, processing, success, failed or cancelled")
@click.option("--sort", default="dateCreated", help="dateCreated, dateModified, dateCompleted or status")
@click.option("--desc", is_flag=True)
@click.option("--limit", type=str, default=None)
@click.option("--cursor", default=None)
@json_option
@click.pass_context
@clean_errors
def list_(ctx: click.Context, task_type: str | None, status: str | None, sort: str, desc: bool,
          limit: str | None, cursor: str | None, as_json: bool) -> None:
    """One page of records, and the cursor of the next."""
    bg = component(ctx)
    size: int | None = None
    if limit is not None:
        if not limit.isdigit():
            fail(f"--limit: {limit!r} is not a whole number")
        size = int(limit)
    page = bg.query(task_type=task_type, task_status=status, sort_property=sort,
                    sort_direction="desc" if desc else "asc", cursor=cursor, limit=size)
    if as_json:
        emit_json([twin(t) for t in page.entities])
        return
    table(None, TASK_COLUMNS, task_rows(page.entities))
    click.echo(f"next cursor: {page.cursor}" if page.cursor else "last page")


@bgtask.command()
@click.argument("task_id")
@json_option
@click.pass_context
@clean_errors
def show(ctx: click.Context, task_id: str, as_json: bool) -> None:
    """One record, every field."""
    task = component(ctx).get(task_id)
    if task is None:
        fail(f"task {task_id}: no such record")
    if as_json:
        emit_json(twin(task))
    else:
        show_task(task)


def _change(name: str, help_text: str) -> None:
    """``cancel``, ``retry``, ``abort`` and ``remove``: exit 0 when the record changed, 1 when not."""

    @bgtask.command(name=name, help=help_text)
    @click.argument("task_id")
    @click.pass_context
    @clean_errors
    def command(ctx: click.Context, task_id: str) -> None:
        bg = component(ctx)
        if bg.get(task_id) is None:
            fail(f"task {task_id}: no such record")
        changed = bool(getattr(bg, name)(task_id))
        click.echo(f"{name}: {'done' if changed else 'nothing to do (the task is not in a state for it)'}")
        if not changed:
            raise SystemExit(NO)


_change("cancel", "Cancel a pending task (it never runs).")
_change("retry", "Run a task waiting for a retry now, or requeue a failed one.")
_change("abort", "Ask a running definition task to stop; a waiting one is cancelled.")
_change("remove", "Delete the record whatever its retention.")


@bgtask.command()
@click.argument("definition_id")
@click.option("--input", "input_json", default=None, help="The definition's input, as JSON.")
@json_option
@click.pass_context
@clean_errors
def trigger(ctx: click.Context, definition_id: str, input_json: str | None, as_json: bool) -> None:
    """Start a run of a definition; prints the task's URN."""
    urn = component(ctx).trigger(definition_id, parse_json("--input", input_json))
    emit_json({"id": urn}) if as_json else click.echo(urn)


@bgtask.command()
@json_option
@click.pass_context
@clean_errors
def definitions(ctx: click.Context, as_json: bool) -> None:
    """The public task definitions."""
    infos = component(ctx).definitions(include_private=False)
    if as_json:
        emit_json([i.model_dump(mode="json") for i in infos])
    else:
        table(None, ("id", "title", "description"), [[i.id, i.title, i.description] for i in infos])


@bgtask.command()
@json_option
@click.pass_context
@clean_errors
def schedules(ctx: click.Context, as_json: bool) -> None:
    """Every scheduled task with its trigger times."""
    info = scheduler_for(component(ctx).app).tasks_info()
    if as_json:
        emit_json(info.model_dump(mode="json", by_alias=True, exclude_none=True))
        return
    rows = [[sid, instant(t.next_trigger_time), _every(t), "yes" if t.paused else "",
             _last_firing(t.last_fired_at, t.last_status)] for sid, times in info.tasks.items() for t in times]
    table(None, ("schedule", "next trigger", "every", "paused", "last firing"), rows)


def _every(t: ScheduledTaskTime) -> str:
    """A time's repeat rule in one cell: its cron and zone, or its interval parts."""
    if t.cron is not None:
        return f"cron '{t.cron}' {t.timezone or 'UTC'}"
    parts = [(t.interval_days, "d"), (t.interval_hours, "h"), (t.interval_minutes, "m"), (t.interval_seconds, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "once"


def _last_firing(at: int | None, status: str | None) -> str:
    return "" if at is None else f"{instant(at)} ({status or 'removed'})"


def _schedule_switch(name: str, switch: Callable[[TaskSchedulerComponent, str], bool]) -> None:
    """``pause`` / ``resume``: the scheduler's ``pause_task`` / ``resume_task``."""

    @bgtask.command(name=name, help=f"{name.capitalize()} a schedule (TaskSchedulerComponent.{name}_task).")
    @click.argument("schedule_id")
    @click.pass_context
    @clean_errors
    def command(ctx: click.Context, schedule_id: str) -> None:
        if not switch(scheduler_for(component(ctx).app), schedule_id):
            fail(f"schedule {schedule_id}: no such schedule")
        click.echo(f"{name}: done")


_schedule_switch("pause", TaskSchedulerComponent.pause_task)
_schedule_switch("resume", TaskSchedulerComponent.resume_task)


@bgtask.command()
@json_option
@click.pass_context
@clean_errors
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts by type and status, and the age of the oldest pending task per type."""
    bg = component(ctx)
    bg.ensure_ready()
    found = read_stats(bg.engine)
    now = now_ms()
    types = sorted({t for t, _ in found.counts} | set(found.oldest_pending))
    statuses = [s.value for s in TaskStatus]
    per_type = {t: {s: found.counts.get((t, s), 0) for s in statuses} for t in types}
    ages = {t: (now - at) / 1000 for t, at in found.oldest_pending.items()}
    if as_json:
        emit_json({"counts": per_type, "oldestPendingSeconds": ages})
        return
    rows = [[t, *per_type[t].values(), "" if t not in ages else f"{ages[t]:.1f} s"] for t in types]
    table(None, ("type", *statuses, "oldest pending"), rows)


@bgtask.command()
@click.argument("task_id")
@click.option("--interval", type=float, default=0.5, help="Seconds between two reads of the record.")
@json_option
@click.pass_context
@clean_errors
def watch(ctx: click.Context, task_id: str, interval: float, as_json: bool) -> None:
    """Follow a task live until it finishes; exit 0 on success, 1 otherwise."""
    bg = component(ctx)
    if bg.get(task_id) is None:
        fail(f"task {task_id}: no such record")
    task = follow(bg, task_id, interval, quiet=as_json)
    if as_json:
        emit_json(twin(task))
    else:
        click.echo(f"{task.status.value}: " + (str(task.error.message) if task.error else "done"))
    raise SystemExit(0 if task.status == TaskStatus.SUCCESS else NO)


@bgtask.command()
@click.pass_context
@clean_errors
def migrate(ctx: click.Context) -> None:
    """Bring the database to the newest schema."""
    migrate_schema(component(ctx).engine)
    click.echo("schema is at the newest revision")


@bgtask.command()
@click.pass_context
@clean_errors
def cleanup(ctx: click.Context) -> None:
    """Delete the records whose retention has expired, now."""
    bg = component(ctx)
    bg.ensure_ready()
    removed = total = 0
    while removed := bg.store.delete_expired(now_ms(), 1000):
        total += removed
    click.echo(f"removed {total} expired record(s)")


@bgtask.command()
@click.option("--address", default="127.0.0.1")
@click.option("--port", type=int, default=5556)
def dashboard(address: str, port: int) -> None:
    """Serve the web dashboard and HTTP API (not built in this version)."""
    click.echo("Error: the dashboard is not built in this version of celery-bgtask", err=True)
    raise SystemExit(BAD_INPUT)
