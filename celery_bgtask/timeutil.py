"""Millisecond UTC time: the one clock representation used everywhere.

The store keeps every instant as integer epoch milliseconds. That sorts and compares the
same way on SQLite, PostgreSQL and MySQL, has no timezone ambiguity, and matches the TWIN
contract's millisecond precision exactly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    """The current wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def ms_to_dt(ms: int) -> datetime:
    """Epoch milliseconds to an aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=ms)


def dt_to_ms(value: datetime) -> int:
    """An aware (or naive, taken as UTC) datetime to epoch milliseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(milliseconds=1)


def to_utc_ms(value: datetime) -> datetime:
    """Normalise a datetime to aware UTC, truncated to the millisecond."""
    return ms_to_dt(dt_to_ms(value))


def iso_z(value: datetime) -> str:
    """``2026-03-09T10:30:00.000Z``: the TWIN wire form of an instant."""
    value = to_utc_ms(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
