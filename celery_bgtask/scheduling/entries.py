"""``app.conf.beat_schedule`` entries as database schedules.

Each entry becomes a schedule under the entry's name: one trigger time (``interval_seconds``
for a ``timedelta``, a number or ``celery.schedules.schedule``; ``cron`` in the app's
``timezone`` for a ``crontab``), the named Celery task as its callback, and the entry's
``args``, ``kwargs`` and ``options`` as JSON. The hash of all that lets beats that start
at once agree: an entry whose stored hash is the same is left as it is (its next trigger
too), so a restart neither resets nor duplicates it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.schedules import crontab, schedule, solar

from ..errors import TaskValidationError
from ..models import ScheduledTaskTime
from ..reprs import safe_repr
from ..validation import json_text
from .callbacks import task_ref
from .cron import CronError, parse_cron, zone


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``beat_schedule`` entry, ready to store."""

    name: str
    callback: str
    time: ScheduledTaskTime
    call: str  # JSON: {"args": [...], "kwargs": {...}, "options": {...}}
    digest: str


def _field_list(values: Iterable[int], lowest: int, highest: int) -> str:
    """A cron field for a set of ints: ``*`` when it is the whole range, else ``a-b,c``."""
    ordered = sorted(values)
    if ordered == list(range(lowest, highest + 1)):
        return "*"
    parts: list[str] = []
    start = prev = ordered[0]
    for v in [*ordered[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ",".join(parts)


def crontab_text(spec: crontab) -> str:
    """The five-field cron string of a Celery ``crontab`` (from its expanded sets)."""
    return " ".join((
        _field_list(spec.minute, 0, 59), _field_list(spec.hour, 0, 23), _field_list(spec.day_of_month, 1, 31),
        _field_list(spec.month_of_year, 1, 12), _field_list(spec.day_of_week, 0, 6),
    ))


def _time(where: str, every: object, tz: str) -> ScheduledTaskTime:
    if isinstance(every, solar):
        raise TaskValidationError(f"{where}.schedule", "solar schedules are not supported by the bgtask scheduler; "
                                                       "use a crontab at the local time you want, or add_task")
    if isinstance(every, crontab):
        text = crontab_text(every)
        try:
            parse_cron(text)
            zone(tz)
        except CronError as exc:
            raise TaskValidationError(f"{where}.schedule", f"crontab {text!r}: {exc}") from None
        return ScheduledTaskTime(cron=text, timezone=tz)
    if isinstance(every, schedule):
        every = every.run_every
    if isinstance(every, timedelta):
        seconds: object = every.total_seconds()
    elif isinstance(every, (int, float)) and not isinstance(every, bool):
        seconds = every
    else:
        raise TaskValidationError(f"{where}.schedule", f"must be a timedelta, a number of seconds or a crontab, "
                                                       f"got {type(every).__name__}")
    if not isinstance(seconds, (int, float)) or seconds < 1 or seconds != int(seconds):
        raise TaskValidationError(f"{where}.schedule", f"must be a whole number of seconds >= 1, "
                                                       f"got {safe_repr(seconds)}")
    return ScheduledTaskTime(interval_seconds=int(seconds))


def entry_of(name: object, raw: object, tz: str) -> Entry:
    """Check and convert one entry; ``TaskValidationError`` names the entry and the rule."""
    if not isinstance(name, str) or not name or len(name) > 200:
        raise TaskValidationError("beat_schedule", f"an entry's name must be a str of 1 to 200 characters, "
                                                   f"got {safe_repr(name)}")
    where = f"beat_schedule[{name!r}]"
    if not isinstance(raw, Mapping):
        raise TaskValidationError(where, f"must be a dict, got {type(raw).__name__}")
    callback = task_ref(f"{where}.task", raw.get("task"))
    time = _time(where, raw.get("schedule"), tz)
    args, kwargs, options = raw.get("args") or (), raw.get("kwargs") or {}, raw.get("options") or {}
    if not isinstance(args, (list, tuple)):
        raise TaskValidationError(f"{where}.args", f"must be a list or tuple, got {type(args).__name__}")
    for key, value in (("kwargs", kwargs), ("options", options)):
        if not isinstance(value, Mapping):
            raise TaskValidationError(f"{where}.{key}", f"must be a dict, got {type(value).__name__}")
        json_text(f"{where}.{key}", dict(value), max_bytes=None)
    call = json_text(f"{where}.args", {"args": list(args), "kwargs": dict(kwargs), "options": dict(options)},
                     max_bytes=None)
    assert call is not None
    spec = json.dumps([callback, time.model_dump(mode="json", exclude_none=True), json.loads(call)], sort_keys=True)
    return Entry(name, callback, time, call, hashlib.sha256(spec.encode()).hexdigest()[:32])


def entries_of(beat_schedule: Mapping[str, Any] | None, tz: str | None) -> list[Entry]:
    """Every entry of ``beat_schedule`` converted, in name order (crontabs in ``tz``, default UTC)."""
    return [entry_of(name, raw, tz or "UTC") for name, raw in sorted((beat_schedule or {}).items())]
