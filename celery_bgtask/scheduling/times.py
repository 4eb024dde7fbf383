"""Trigger-time arithmetic of scheduled tasks, on integer epoch milliseconds.

An interval is an exact duration (days of 24 h, hours of 60 min), added to epoch ms. No
calendar or timezone enters, so a daily trigger keeps its UTC time of day across a DST
change in the Celery ``timezone`` (its local wall-clock time moves by the DST offset).
A ``cron`` time instead follows local wall-clock time in its ``timezone`` (see ``cron``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from ..errors import TaskValidationError
from ..limits import DAY_MS, MAX_DURATION_MS, MAX_INSTANT_MS, show_int
from ..models import ScheduledTaskTime, interval_ms
from ..reprs import safe_repr
from .cron import CronError, cron_next, parse_cron, zone

_FIELD_ALIASES = {
    "next_trigger_time": "nextTriggerTime",
    "interval_days": "intervalDays",
    "interval_hours": "intervalHours",
    "interval_minutes": "intervalMinutes",
    "interval_seconds": "intervalSeconds",
    "cron": "cron",
    "timezone": "timezone",
}
_INTERVALS = ("interval_days", "interval_hours", "interval_minutes", "interval_seconds")

#: The largest value of each field: an instant a ``datetime`` holds, intervals of 100 years.
_MAXIMA = {
    "next_trigger_time": MAX_INSTANT_MS,
    "interval_days": MAX_DURATION_MS // DAY_MS,
    "interval_hours": MAX_DURATION_MS // 3_600_000,
    "interval_minutes": MAX_DURATION_MS // 60_000,
    "interval_seconds": MAX_DURATION_MS // 1000,
}


def _strict_field(index: int, key: str, value: Any, minimum: int) -> None:
    name = _FIELD_ALIASES.get(key, key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaskValidationError(
            f"times[{index}].{name}", f"must be an int >= {minimum}, got {safe_repr(value)} ({type(value).__name__})"
        )
    if value < minimum:
        raise TaskValidationError(f"times[{index}].{name}", f"must be an int >= {minimum}, got {show_int(value)}")
    if value > _MAXIMA[key]:
        raise TaskValidationError(f"times[{index}].{name}", f"must be at most {_MAXIMA[key]}, got {show_int(value)}")


def _check_cron(index: int, values: dict[str, Any], every: int | None) -> None:
    """A cron is a str cron.py can parse, with no interval; a timezone goes with a cron only."""
    text, tz = values.get("cron"), values.get("timezone")
    for key, value in (("cron", text), ("timezone", tz)):
        if value is not None and not isinstance(value, str):
            raise TaskValidationError(f"times[{index}].{key}", f"must be a str, got {type(value).__name__}")
    if tz is not None and text is None:
        raise TaskValidationError(f"times[{index}].timezone", "applies to a cron time only (give a cron)")
    if text is None:
        return
    if len(text) > 200 or (tz is not None and len(tz) > 64):
        raise TaskValidationError(f"times[{index}].cron", "a cron is at most 200 characters, a timezone 64")
    if every is not None:
        raise TaskValidationError(f"times[{index}].cron", "a time has either an interval or a cron, not both")
    try:
        parse_cron(text)
    except CronError as exc:
        raise TaskValidationError(f"times[{index}].cron", f"{safe_repr(text)} {exc}") from None
    try:
        zone(tz or "UTC")
    except CronError as exc:
        raise TaskValidationError(f"times[{index}].timezone", str(exc)) from None


def _one(index: int, item: Any) -> ScheduledTaskTime:
    if isinstance(item, ScheduledTaskTime):
        values = {k: getattr(item, k) for k in _FIELD_ALIASES}
    elif isinstance(item, dict):
        values = {}
        for key, value in item.items():
            snake = next((s for s, camel in _FIELD_ALIASES.items() if key in (s, camel)), None)
            if snake is None:
                allowed = ", ".join(_FIELD_ALIASES.values())
                raise TaskValidationError(f"times[{index}].{key}", f"is not a field of a time (allowed: {allowed})")
            if snake in values:
                raise TaskValidationError(f"times[{index}].{_FIELD_ALIASES[snake]}", "is given twice")
            values[snake] = value
    else:
        raise TaskValidationError(
            f"times[{index}]", f"must be a ScheduledTaskTime or a dict, got {type(item).__name__}"
        )
    # Checked here, before pydantic, so that the message names the camelCase field and
    # the rule the same way every other option of the package does (no coercion of "5").
    _strict_field(index, "next_trigger_time", values.get("next_trigger_time"), 0)
    for key in _INTERVALS:
        _strict_field(index, key, values.get(key), 1)
    every = interval_ms(*(values.get(k) for k in _INTERVALS))
    if every is not None and every > MAX_DURATION_MS:
        raise TaskValidationError(f"times[{index}]", f"the intervals add up to {every} ms, more than 100 years")
    _check_cron(index, values, every)
    try:
        return ScheduledTaskTime(**values)
    except ValidationError as exc:  # pragma: no cover - the strict checks above come first
        raise TaskValidationError(f"times[{index}]", str(exc)) from None


def plan_times(times: Any, now: int) -> list[ScheduledTaskTime]:
    """Validate ``add_task``'s ``times``; return them with each first trigger resolved.

    A time without ``next_trigger_time`` first fires one interval from ``now``; a time
    with neither a trigger nor an interval could never fire and is rejected.
    """
    if isinstance(times, (str, bytes, dict)) or not isinstance(times, Sequence):
        raise TaskValidationError("times", f"must be a list of ScheduledTaskTime or dicts, got {type(times).__name__}")
    if not times:
        raise TaskValidationError("times", "must hold at least one time")
    planned = []
    for index, item in enumerate(times):
        t = _one(index, item)
        every = t.interval_ms
        first = t.next_trigger_time
        if first is None and t.cron is not None:
            first = cron_next(t.cron, t.timezone or "UTC", now)
            if first is None:
                raise TaskValidationError(f"times[{index}].cron", f"{safe_repr(t.cron)} never matches a date")
        if first is None:
            if every is None:
                raise TaskValidationError(
                    f"times[{index}]", "needs a nextTriggerTime or an interval (it would never fire)"
                )
            first = now + every
        planned.append(t.model_copy(update={"next_trigger_time": first}))
    return planned


def trigger_after(trigger: int, every: int | None, cron: str | None, tz: str | None, now: int) -> int | None:
    """The trigger after a firing at ``now`` of ``trigger``: the next cron minute after
    ``now`` (missed ones collapse into this firing), else ``next_after``."""
    if cron is not None:
        return cron_next(cron, tz or "UTC", max(trigger, now))
    return next_after(trigger, every, now)


def next_after(trigger: int, every: int | None, now: int) -> int | None:
    """The trigger that follows a firing of ``trigger``: None for a one-off.

    Normally ``trigger + every``. When that already lies in the past (beat was down and
    missed firings), the first time on the same grid that lies in the future: the missed
    firings collapse into the one that is happening now.
    """
    if every is None:
        return None
    following = trigger + every
    if following > now:
        return following
    return trigger + ((now - trigger) // every + 1) * every
