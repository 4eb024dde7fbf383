"""Engine construction with the per-dialect settings the store relies on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

#: The embedded default: a SQLite file in the working directory.
DEFAULT_DATABASE_FILE = "celery_bgtask.sqlite3"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_DATABASE_FILE}"


def default_database_url() -> str:
    """The embedded default, pinned to the working directory of the moment.

    SQLite opens a relative path against the directory current at *connect* time, and
    connections are made lazily. A process that changes directory after building the
    component (``celery worker --detach`` goes to ``/``) would otherwise open another file.
    """
    return f"sqlite:///{Path.cwd() / DEFAULT_DATABASE_FILE}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the worker write while a web process reads; busy_timeout waits out short locks.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with settings suited to many short transactions."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", int(os.environ.get("BGTASK_POOL_SIZE", "5")))
    return create_engine(url, **kwargs)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_mysql(engine: Engine) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")
