"""Settings, read from ``app.conf`` (``bgtask_*`` keys) with constructor arguments on top."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from celery import Celery

from . import validation as v
from .errors import TaskValidationError
from .store.engine import default_database_url


def _conf(app: Celery, key: str, default: Any) -> Any:
    value = app.conf.get(f"bgtask_{key}")
    return default if value is None else value


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved component settings; every duration is in milliseconds."""

    database_url: str
    default_retry_interval: int
    default_retain_for: int
    cleanup_interval: int
    queue: str
    max_payload_bytes: int
    lease: int
    poll_interval: int
    redeliver_after: int

    @classmethod
    def resolve(cls, app: Celery, **given: Any) -> Settings:
        """Constructor arguments (non-None) win over ``app.conf.bgtask_<name>``, then defaults."""

        def pick(name: str, default: Any) -> Any:
            value = given.get(name)
            return _conf(app, name, default) if value is None else value

        url = pick("database_url", None) or os.environ.get("BGTASK_DATABASE_URL") or default_database_url()
        if not isinstance(url, str) or not url:
            raise TaskValidationError("database_url", "must be a non-empty SQLAlchemy URL string")
        queue = pick("queue", None) or app.conf.task_default_queue or "celery"
        return cls(
            database_url=url,
            default_retry_interval=_req(
                v.retry_interval("default_retry_interval", pick("default_retry_interval", 5000))
            ),
            default_retain_for=_req(v.retain_for_ms("default_retain_for", pick("default_retain_for", 0))),
            cleanup_interval=_req(v.duration_ms("cleanup_interval", pick("cleanup_interval", 60_000))),
            queue=v.task_type("queue", queue),
            max_payload_bytes=_req(v.strict_int("max_payload_bytes", pick("max_payload_bytes", 1_000_000), minimum=1)),
            lease=_req(v.duration_ms("lease", pick("lease", 60_000), minimum=100)),
            poll_interval=_req(v.duration_ms("poll_interval", pick("poll_interval", 1000), minimum=10)),
            redeliver_after=_req(v.duration_ms("redeliver_after", pick("redeliver_after", 300_000))),
        )


def _req(value: int | None) -> int:
    assert value is not None
    return value


def default_broker(app: Celery) -> None:
    """The embedded default: Celery's in-memory broker when none was configured at all."""
    if not app.conf.broker_url and not os.environ.get("CELERY_BROKER_URL"):
        app.conf.broker_url = "memory://"
