"""The hot writes (a worker's claim and finish, create's INSERT) straight through psycopg, on PostgreSQL.

Each is one statement run in autocommit mode. Through a
SQLAlchemy ``Connection`` it costs about 1 ms of Python on a 2-core machine, twice the
round trip itself: the connection and transaction objects, the execution context, the
result set-up. Here the statement is compiled by SQLAlchemy once, and each call checks a
DB-API connection out of the same pool, runs the SQL with psycopg, and builds a real
``sqlalchemy.Row`` from the tuple, so callers see no difference.

What SQLAlchemy would have done on an error is done here too: the psycopg error is
wrapped in SQLAlchemy's exception (``DBAPIError.instance``, so ``OperationalError``
stays ``OperationalError`` for ``resilience.with_retries``), and a connection that the
dialect says is gone is invalidated rather than returned to the pool. Connection events
that fire for cursors (``before_cursor_execute``, ``echo``) do not see these statements;
pool events (checkout, checkin) do.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Row, Update
from sqlalchemy.engine.result import result_tuple
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase


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


class FastWrites:
    def __init__(self, engine: Engine, returning: Sequence[str]) -> None:
        self.engine = engine
        self.returning = list(returning)
        self._prepared: dict[Hashable, _Prepared] = {}
        self._dbapi_error = engine.dialect.loaded_dbapi.Error

    def update_one(self, key: Hashable, stmt: Update, params: Mapping[str, Any]) -> Row[Any] | None:
        """Run ``stmt`` (an UPDATE ... RETURNING the ``returning`` columns, always the same
        statement for ``key``) as its own transaction; the new row, or None if it matched none."""
        found = self._run(key, stmt, params, fetch=True)
        return None if found is None else self._prepared[key].make_row(found)

    def execute(self, key: Hashable, build: Callable[[], UpdateBase], params: Mapping[str, Any]) -> None:
        """Run the statement ``build`` makes (once for ``key``; no RETURNING) as its own transaction."""
        self._run(key, build, params, fetch=False)

    def _run(self, key: Hashable, stmt: UpdateBase | Callable[[], UpdateBase], params: Mapping[str, Any],
             fetch: bool) -> Any:
        prepared = self._prepared.get(key)
        if prepared is None:
            built = stmt if isinstance(stmt, UpdateBase) else stmt()
            prepared = self._prepared[key] = _Prepared(self.engine, built, self.returning)
        values = prepared.compiled.construct_params(dict(params))
        try:
            fairy = self.engine.raw_connection()
        except self._dbapi_error as exc:  # could not connect: as engine.connect() would say it
            raise DBAPIError.instance(None, None, exc, self._dbapi_error, dialect=self.engine.dialect) from exc
        try:
            conn = fairy.driver_connection
            assert conn is not None
            try:
                conn.autocommit = True
                try:
                    cursor = conn.execute(prepared.sql, values)
                    return cursor.fetchone() if fetch else None
                finally:
                    conn.autocommit = False
            except self._dbapi_error as exc:
                gone = self.engine.dialect.is_disconnect(exc, fairy, None)
                if gone:
                    fairy.invalidate(exc)
                raise DBAPIError.instance(prepared.sql, values, exc, self._dbapi_error,
                                          connection_invalidated=gone, dialect=self.engine.dialect) from exc
        finally:
            fairy.close()
