"""Cron trigger times: the next matching minute of local wall-clock time in an IANA zone.

The five fields are parsed by Celery's own ``crontab`` (so a beat user's
``crontab(hour=9, minute=0)`` and the string ``"0 9 * * *"`` mean the same, with Celery's
rule that day of month and day of week must both match). The search over local minutes
and the zone arithmetic are ours, on ``zoneinfo``, so DST changes have a fixed rule:

- a local time that occurs twice (autumn) fires once, at its first occurrence;
- a local time that does not exist (spring) fires at the next valid minute (the first
  minute after the gap), once, however many matching minutes fell into the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab

#: How far ahead a next firing is looked for (a "29 Feb on a Monday" takes up to 28 years).
HORIZON_DAYS = 366 * 30


class CronError(ValueError):
    """A cron string or zone that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A parsed five-field cron expression: the sets each field allows."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday, as in cron

    def day_matches(self, day: date) -> bool:
        return (day.month in self.months and day.day in self.days_of_month
                and day.isoweekday() % 7 in self.days_of_week)


@lru_cache(maxsize=4096)
def parse_cron(text: str) -> CronSpec:
    """Parse ``"minute hour day-of-month month day-of-week"``; raises ``CronError``."""
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    minute, hour, dom, month, dow = fields
    try:
        spec = crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow)
    except (ValueError, TypeError, KeyError) as exc:
        raise CronError(f"is not a valid crontab: {exc}") from None
    return from_crontab(spec)


def from_crontab(spec: crontab) -> CronSpec:
    """The sets of a Celery ``crontab`` (as ``beat_schedule`` entries hold them)."""
    return CronSpec(tuple(sorted(spec.minute)), tuple(sorted(spec.hour)), frozenset(spec.day_of_month),
                    frozenset(spec.month_of_year), frozenset(spec.day_of_week))


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ``CronError`` for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"is not a known IANA time zone: {name!r} ({type(exc).__name__})") from None


def _instant(local: datetime, tz: ZoneInfo) -> int:
    """Epoch ms of a naive local minute: its first occurrence, or the gap's end if it does not exist."""
    aware = local.replace(tzinfo=tz, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local:
        # In a spring-forward gap: step to the first minute that exists.
        probe = local
        while True:
            probe += timedelta(minutes=1)
            back = probe.replace(tzinfo=tz).astimezone(UTC)
            if back.astimezone(tz).replace(tzinfo=None) == probe:
                utc = back
                break
    return int(utc.timestamp() * 1000)


def _steady(at: int, tz: ZoneInfo) -> bool:
    """Whether the zone's UTC offset is the same 3 hours either side of ``at``."""
    window = 3 * 3_600_000
    before = datetime.fromtimestamp((at - window) / 1000, UTC).astimezone(tz).utcoffset()
    return before == datetime.fromtimestamp((at + window) / 1000, UTC).astimezone(tz).utcoffset()


def cron_next(text: str, tz_name: str, after: int) -> int | None:
    """The first firing of the cron time strictly after epoch ms ``after``; None if none within the horizon."""
    spec = parse_cron(text)
    tz = zone(tz_name)
    start = datetime.fromtimestamp(after / 1000, UTC).astimezone(tz).replace(tzinfo=None)
    # Near a DST change begin 3 hours early: a gap's end or a doubled hour can map an
    # earlier local minute past ``after``. Elsewhere local minutes before ``start`` are past.
    lower = start if _steady(after, tz) else start - timedelta(hours=3)
    day = lower.date()
    for _ in range(HORIZON_DAYS):
        if spec.day_matches(day):
            for h in spec.hours:
                if datetime(day.year, day.month, day.day, h, 59) < lower:
                    continue
                for m in spec.minutes:
                    local = datetime(day.year, day.month, day.day, h, m)
                    if local < lower:
                        continue
                    at = _instant(local, tz)
                    if at > after:
                        return at
        day += timedelta(days=1)
    return None
