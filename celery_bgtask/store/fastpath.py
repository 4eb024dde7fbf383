"""The hot writes (a worker's claim and finish, create's INSERT) straight through psycopg, on PostgreSQL.

Each is one statement run in autocommit mode. Through a
SQLAlchemy ``Connection`` it costs about 1 ms of Python on a 2-core machine, twice the
round trip itself: the connection and transaction objects, the execution context, the
result set-up. Here the statement is compiled by SQLAlchemy once, each call runs the SQL
on a DB-API connection with psycopg, and builds a real ``sqlalchemy.Row`` from the tuple,
so callers see no difference.

What SQLAlchemy would have done on an error is done here too: the psycopg error is
wrapped in SQLAlchemy's exception (``DBAPIError.instance``, so ``OperationalError``
stays ``OperationalError`` for ``resilience.with_retries``), and a connection that the
dialect says is gone is closed rather than used again. Connection events
that fire for cursors (``before_cursor_execute``, ``echo``) do not see these statements.

A worker's claim and finish (``update_one``) run on a connection each thread keeps for
itself, in autocommit, instead of checking one out of the pool twice a task: a checkout
and checkin (events, the reset's rollback, the autocommit switch back and forth) cost
about 0.05 ms of Python a statement, two fifths of what the worker spent around the two
round trips. The connection is made by the engine's pool (so ``connect`` events and
``connect_args`` apply), then detached from it; it is pinged when it sat idle longer than
``BGTASK_PING_AFTER_IDLE`` (as pooled ones are; before every statement if the engine has
``pool_pre_ping=True``), replaced after a fork or when it breaks,
and closed when its thread ends, when the engine is disposed, or by ``close_held``. A
process therefore holds one such connection per thread that runs tasks (one per prefork
child, ``concurrency`` for a threads pool), besides its pool. ``create``'s INSERT
(``execute``) still checks out of the pool: producers are often web servers with many
short-lived threads.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Row, Update, event
from sqlalchemy.engine.result import result_tuple
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.dml import UpdateBase

from .engine import PING_AFTER_IDLE, is_alive


def supported(engine: Engine) -> bool:
    """psycopg 3 on PostgreSQL (its connections have ``execute`` and an ``autocommit`` switch)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


class _Prepared:
    __slots__ = ("compiled", "make_row", "sql")

    def __init__(self, engine: Engine, stmt: UpdateBase, returning: Sequence[str]) -> None:
        self.compiled = stmt.compile(dialect=engine.dialect)
        self.sql = self.compiled.string
        # The types of bgtask_tasks need no result processing on psycopg: a tuple is the row.
        self.make_row: Callable[[Any], Row[Any]] = result_tuple(list(returning))


class _Held:
    """The connection one thread keeps for its claims and finishes (see the module docstring)."""

    __slots__ = ("__weakref__", "close", "conn", "pid", "used")

    def __init__(self, fairy: Any) -> None:
        #: The psycopg connection (a detached fairy no longer answers ``driver_connection``).
        self.conn = fairy.dbapi_connection
        self.pid = os.getpid()
        self.used = time.monotonic()
        #: Closes the connection, once: when called, or when this object goes with its thread.
        self.close = weakref.finalize(self, _close_quietly, fairy, self.pid)


#: Connections a forked child inherited from its parent: kept referenced, never used or
#: closed here (closing would end the parent's session; dropping them would only warn).
_inherited: list[Any] = []


def _close_quietly(fairy: Any, pid: int) -> None:
    if pid != os.getpid():
        _inherited.append(fairy)
        return
    try:
        fairy.close()
    except Exception:  # already broken: nothing left to close
        pass


class FastWrites:
    def __init__(self, engine: Engine, returning: Sequence[str]) -> None:
        self.engine = engine
        self.returning = list(returning)
        self._prepared: dict[Hashable, _Prepared] = {}
        self._dbapi_error = engine.dialect.loaded_dbapi.Error
        self._local = threading.local()
        self._held: weakref.WeakSet[_Held] = weakref.WeakSet()
        # An engine built with ``pool_pre_ping=True`` asked for a ping before every use: the
        # held connection then gets one before every statement too, not only after idling.
        self._idle = 0.0 if getattr(engine.pool, "_pre_ping", False) else PING_AFTER_IDLE
        event.listen(engine, "engine_disposed", lambda _engine: self.close_held())

    def update_one(self, stmt: Update, params: Mapping[str, Any]) -> Row[Any] | None:
        """Run ``stmt`` (an UPDATE ... RETURNING the ``returning`` columns, built once and kept:
        its compiled form is cached under it) as its own transaction, on this thread's held
        connection; the new row, or None if it matched none."""
        prepared = self._prepare(stmt, stmt)
        values = prepared.compiled.construct_params(dict(params))
        held = self._holding()
        try:
            found = held.conn.execute(prepared.sql, values).fetchone()
        except self._dbapi_error as exc:
            gone = self._gone(exc, held.conn)
            if gone:
                self._drop(held)
            raise self._wrapped(exc, prepared.sql, values, gone) from exc
        held.used = time.monotonic()
        return None if found is None else prepared.make_row(found)

    def execute(self, key: Hashable, build: Callable[[], UpdateBase], params: Mapping[str, Any]) -> None:
        """Run the statement ``build`` makes (once for ``key``; no RETURNING) as its own
        transaction, on a connection checked out of the pool."""
        prepared = self._prepare(key, build)
        values = prepared.compiled.construct_params(dict(params))
        fairy = self._checkout()
        try:
            conn = fairy.driver_connection
            try:
                conn.autocommit = True
                try:
                    conn.execute(prepared.sql, values)
                finally:
                    conn.autocommit = False
            except self._dbapi_error as exc:
                gone = self._gone(exc, conn)
                if gone:
                    fairy.invalidate(exc)
                raise self._wrapped(exc, prepared.sql, values, gone) from exc
        finally:
            fairy.close()

    def close_held(self) -> None:
        """Close the held connections of this process's threads (the next call makes a new one)."""
        for held in list(self._held):
            self._drop(held)

    # -- internals -------------------------------------------------------------------
    def _prepare(self, key: Hashable, stmt: UpdateBase | Callable[[], UpdateBase]) -> _Prepared:
        prepared = self._prepared.get(key)
        if prepared is None:
            built = stmt if isinstance(stmt, UpdateBase) else stmt()
            prepared = self._prepared[key] = _Prepared(self.engine, built, self.returning)
        return prepared

    def _checkout(self) -> Any:
        try:
            return self.engine.raw_connection()
        except self._dbapi_error as exc:  # could not connect: as engine.connect() would say it
            raise self._wrapped(exc, None, None, False) from exc

    def _gone(self, exc: Any, conn: Any) -> bool:
        """Whether the error left ``conn`` unusable (as SQLAlchemy would judge it)."""
        return bool(self.engine.dialect.is_disconnect(exc, conn, None) or conn.broken or conn.closed)

    def _wrapped(self, exc: Exception, sql: str | None, values: Any, gone: bool) -> StatementError:
        """The psycopg error as SQLAlchemy's exception (``OperationalError`` stays one)."""
        return DBAPIError.instance(sql, values, exc, self._dbapi_error, connection_invalidated=gone,
                                   dialect=self.engine.dialect)

    def _holding(self) -> _Held:
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and not self._usable(held):
            self._drop(held)
            held = None
        if held is None:
            fairy = self._checkout()
            fairy.detach()
            held = _Held(fairy)
            held.conn.autocommit = True
            self._local.held = held
            self._held.add(held)
        return held

    def _usable(self, held: _Held) -> bool:
        """Ours (not inherited over a fork), open, and alive if it sat idle."""
        if held.pid != os.getpid() or held.conn.closed:
            return False
        return time.monotonic() - held.used <= self._idle or is_alive(self.engine, held.conn)

    def _drop(self, held: _Held) -> None:
        self._held.discard(held)
        if getattr(self._local, "held", None) is held:
            self._local.held = None
        held.close()
