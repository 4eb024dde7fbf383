"""Settings, read from ``app.conf`` (``bgtask_*`` keys) with constructor arguments on top."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from typing import Any

from celery import Celery

from . import validation as v
from .errors import TaskValidationError
from .store.engine import default_database_url, without_password

log = logging.getLogger(__name__)
#: The names Celery takes for JSON in ``accept_content``.
JSON_NAMES = frozenset({"json", "application/json"})


def _conf(app: Celery, key: str, default: Any) -> Any:
    value = app.conf.get(f"bgtask_{key}")
    return default if value is None else value


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """Resolved component settings; every duration is in milliseconds.

    Their repr (and str) hide the database password; ``database_url`` itself is the real URL.
    """

    database_url: str
    default_retry_interval: int
    default_retain_for: int
    cleanup_interval: int
    queue: str
    max_payload_bytes: int
    lease: int
    poll_interval: int
    redeliver_after: int

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["database_url"] = without_password(self.database_url)
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

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


def warn_unless_json_only(app: Celery) -> None:
    """Say so when the app lets its workers deserialise more than JSON (pickle runs code as it loads).

    Our own tasks drop any message that is not JSON unread (``messages.guarded_strategy``);
    the app's setting is left alone, since the user's own tasks may need it.
    """
    for key in ("accept_content", "result_accept_content"):
        others = sorted({str(c) for c in app.conf.get(key) or ()} - JSON_NAMES)
        if others:
            log.warning("app.conf.%s allows %s besides JSON: this app's workers will deserialise such messages "
                        "for your own tasks, and pickle runs code as it loads. celery_bgtask's tasks take JSON "
                        "only and drop anything else unread; set %s=['json'] unless your own tasks need more",
                        key, ", ".join(others), key)
