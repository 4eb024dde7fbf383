"""The callbacks of ``daily_sync.py``. Scheduled callbacks must be importable by name,
because the worker that runs them imports them: a module like this one, not ``__main__``.
"""

from __future__ import annotations

from datetime import UTC, datetime


def sync() -> dict[str, str]:
    """The seed example's daily sync."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(f"  sync running at {at}")
    return {"syncedAt": at}


def warm_cache() -> None:
    print("  cache warmed")
