"""Engine construction with the per-dialect settings the store relies on."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, NoSuchModuleError

from ..errors import StoreUnavailableError, TaskValidationError

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
    # busy_timeout first, so that the statements below wait out another process's lock.
    cur.execute("PRAGMA busy_timeout=30000")
    _wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _wal(cur: Any, deadline: float = 30.0) -> None:
    """Switch the file to WAL (it lets the worker write while a web process reads).

    The switch is a lock upgrade: when two fresh connections make it at once, SQLite answers
    one of them "database is locked" at once, without waiting on busy_timeout (deadlock
    avoidance). The mode is kept in the file, so only the first connections ever switch.
    """
    give_up = time.monotonic() + deadline
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
            time.sleep(0.01)


#: A pooled connection that sat idle longer than this (seconds) is pinged before it is used.
PING_AFTER_IDLE = float(os.environ.get("BGTASK_PING_AFTER_IDLE", "1.0"))
_IDLE_SINCE = "bgtask_idle_since"


def is_alive(engine: Engine, dbapi_conn: Any) -> bool:
    """The dialect's ping (a round trip); a ping that raises means a dead connection."""
    try:
        return bool(engine.dialect.do_ping(dbapi_conn))
    except Exception:
        return False


def ping_after_idle(engine: Engine, idle: float) -> None:
    """Like ``pool_pre_ping``, but only for connections idle more than ``idle`` seconds.

    ``pool_pre_ping`` costs a round trip on every checkout, as much as the one-statement
    writes of the worker path. A connection handed back a moment ago is as good as the
    ping would say; the ones that go bad (a restarted server, a dropped idle link) are the
    ones that sat in the pool. A connection that fails anyway is invalidated by SQLAlchemy,
    with the rest of the pool, on its first error, and the worker's writes retry
    (``resilience.with_retries``).
    """

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < idle:
            return  # new, or back in the pool only a moment ago
        if not is_alive(engine, dbapi_conn):
            raise DisconnectionError()  # the pool replaces it and tries again

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with settings suited to many short transactions.

    Server databases get ``ping_after_idle`` unless ``pool_pre_ping`` is passed.
    """
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", int(os.environ.get("BGTASK_POOL_SIZE", "5")))
    if "pool_pre_ping" in kwargs:
        return create_engine(url, **kwargs)
    engine = create_engine(url, **kwargs)
    ping_after_idle(engine, PING_AFTER_IDLE)
    return engine


#: The extra that installs the driver of a dialect.
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def open_engine(url: str) -> Engine:
    """``make_engine`` for a URL a user gave: a malformed URL raises ``TaskValidationError`` and a
    driver that is not installed ``StoreUnavailableError`` (neither message shows a password)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise TaskValidationError(
            "database_url", "is not an SQLAlchemy URL (dialect+driver://user:password@host:port/database)"
        ) from None
    try:
        return make_engine(url)
    except NoSuchModuleError:
        raise TaskValidationError(
            "database_url", f"names an unknown dialect or driver {parsed.drivername!r} "
                            "(e.g. postgresql+psycopg, mysql+pymysql, sqlite)"
        ) from None
    except ImportError as exc:
        extra = _EXTRAS.get(parsed.get_backend_name())
        hint = f"pip install 'celery-bgtask[{extra}]'" if extra else "install the DB-API driver"
        raise StoreUnavailableError(
            f"the driver for {parsed.render_as_string(hide_password=True)} is not installed ({exc}); {hint}"
        ) from exc


def without_password(url: str) -> str:
    """``url`` with its password shown as ``***``, for a repr or a message; a URL that does not
    parse is not shown at all (it might hold a password where no parser would find it)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<not an SQLAlchemy URL>"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_mysql(engine: Engine) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")
