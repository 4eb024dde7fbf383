"""``SqlTaskStore``: the ``TaskStore`` protocol on SQLite, PostgreSQL and MySQL/MariaDB.

Every transition is one conditional UPDATE whose WHERE clause is the transition's
``Expect`` (``guards``), so exactly one of several racing callers changes a record. On
PostgreSQL a single-statement write runs in autocommit (one round trip), the hot ones on
psycopg's fast path (``fastpath``); MySQL, which has no ``UPDATE ... RETURNING``, reads the
new record back in the same transaction.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from contextlib import AbstractContextManager

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    TextClause,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)

from ...core.record import FIELDS, TaskRecord, as_row, record_of
from ...core.state import Transition
from ...resilience import redacted
from .. import fastpath
from ..base import Due, PageQuery
from ..engine import is_mysql
from ..migrate import ensure_schema, installation_secret
from ..schema import tasks
from . import guards, slots, sweeps

c = tasks.c
_INSERT = insert(tasks)

#: Appended to the WHERE clause of a single statement on PostgreSQL (the claim; a sent-mark):
#: ``synchronous_commit = off`` for the (implicit) transaction of that one statement only.
#: For the claim it is safe because a later synchronous commit (the final state) flushes
#: the WAL up to itself, claim included, and a claim lost to a server crash only leaves the
#: record pending at its old attempt: the run's finish then fails its fence and the sweeper
#: runs the task again.
ASYNC_COMMIT = func.set_config("synchronous_commit", "off", True) == "off"


class SqlTaskStore:
    """Task records in one database. Thread-safe; one per engine is enough."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._returning = not is_mysql(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else None
        self._statements: dict[Hashable, Update] = {}
        self._fast = fastpath.FastWrites(engine, list(FIELDS)) if fastpath.supported(engine) else None
        self._unnest: dict[tuple[str, ...], TextClause] = {}
        self._secret: bytes | None = None

    # -- set-up ----------------------------------------------------------------------
    def ensure_schema(self) -> None:
        ensure_schema(self.engine)

    def secret(self) -> bytes:
        if self._secret is None:
            self.ensure_schema()
            self._secret = installation_secret(self.engine)
        return self._secret

    def describe(self) -> str:
        return redacted(self.engine)

    def close_held(self) -> None:
        """Close the connections this process's threads hold for claims and finishes (if any)."""
        if self._fast is not None:
            self._fast.close_held()

    def one_statement(self) -> AbstractContextManager[Connection]:
        """A connection for a write that is a single statement: on PostgreSQL in autocommit (the
        statement is its own transaction, one round trip instead of three), else a transaction."""
        if self._autocommit is not None:
            return self._autocommit.connect()
        return self.engine.begin()

    def _write(self, stmt: Executable) -> int:
        with self.one_statement() as conn:
            return conn.execute(stmt).rowcount

    # -- records ---------------------------------------------------------------------
    def insert(self, records: Sequence[TaskRecord]) -> None:
        """All the rows or none: one statement (on PostgreSQL, and for one row), else one transaction.

        On PostgreSQL several rows go as one INSERT that takes a column of values per
        parameter (``INSERT ... SELECT * FROM unnest(...)``): a VALUES list of 23 parameters a
        row is a query psycopg spends longer parsing than the server spends inserting.
        """
        rows = [as_row(r) for r in records]
        if len(rows) == 1:
            if self._fast is not None:
                self._fast.execute(("insert", FIELDS), lambda: _INSERT.values({k: bindparam(f"p_{k}") for k in FIELDS}),
                                   {f"p_{k}": v for k, v in rows[0].items()})
                return
            with self.one_statement() as conn:
                conn.execute(_INSERT, rows[0])
            return
        if self._postgres:
            columns = {name: [row[name] for row in rows] for name in FIELDS}
            with self.one_statement() as conn:
                conn.execute(self._unnest_insert(), columns)
            return
        with self.engine.begin() as conn:
            conn.execute(_INSERT, rows)

    def insert_in(self, connection: Connection, records: Sequence[TaskRecord]) -> None:
        """INSERT the rows on the caller's connection, inside its transaction: they commit or
        roll back with the caller's own writes (``transactional``)."""
        connection.execute(_INSERT, [as_row(r) for r in records])

    def _unnest_insert(self) -> TextClause:
        stmt = self._unnest.get(FIELDS)
        if stmt is None:
            type_of = self.engine.dialect.type_compiler_instance.process
            arrays = ", ".join(f"CAST(:{n} AS {type_of(tasks.c[n].type)}[])" for n in FIELDS)
            stmt = self._unnest[FIELDS] = text(f"INSERT INTO {tasks.name} ({', '.join(FIELDS)}) "
                                               f"SELECT * FROM unnest({arrays})")
        return stmt

    def get(self, task_id: str) -> TaskRecord | None:
        with self.engine.connect() as conn:
            return record_of(conn.execute(select(tasks).where(c.id == task_id)).first())

    def page(self, query: PageQuery) -> list[TaskRecord]:
        key = func.coalesce(c.date_completed, -1) if query.sort_field == "date_completed" else c[query.sort_field]
        stmt = select(tasks)
        if query.task_type is not None:
            stmt = stmt.where(c.type == query.task_type)
        if query.status is not None:
            stmt = stmt.where(c.status == query.status)
        if query.after is not None:
            bound, value = tuple_(key, c.id), tuple_(*query.after)
            stmt = stmt.where(bound < value if query.descending else bound > value)
        order = (key.desc(), c.id.desc()) if query.descending else (key.asc(), c.id.asc())
        with self.engine.connect() as conn:
            return [TaskRecord(*row) for row in conn.execute(stmt.order_by(*order).limit(query.limit))]

    def apply(self, task_id: str, transition: Transition) -> TaskRecord | None:
        key = guards.shape(transition)
        stmt = self._statements.get(key)
        if stmt is None:
            stmt = self._statements[key] = self._finalize(guards.statement(transition), not transition.durable)
        params = guards.params(task_id, transition)
        if self._fast is not None:
            return record_of(self._fast.update_one(stmt, params))
        if self._returning:
            with self.one_statement() as conn:
                return record_of(conn.execute(stmt, params).first())
        with self.engine.begin() as conn:
            if conn.execute(stmt, params).rowcount != 1:
                return None
            return record_of(conn.execute(select(tasks).where(c.id == task_id)).first())

    def _finalize(self, stmt: Update, async_commit: bool) -> Update:
        """Add what the dialect needs: RETURNING the new row, and the claim's async commit."""
        if not self._returning:
            return stmt
        if async_commit and self._postgres:
            stmt = stmt.where(ASYNC_COMMIT)
        return stmt.returning(*tasks.c)

    def delete(self, task_id: str) -> bool:
        return self._write(delete(tasks).where(c.id == task_id)) == 1

    def abort_requested(self, task_id: str) -> bool:
        with self.engine.connect() as conn:
            flag = conn.execute(select(c.abort_requested).where(c.id == task_id)).scalar()
        return True if flag is None else bool(flag)

    # -- wake-ups --------------------------------------------------------------------
    def set_enqueued(self, task_ids: Sequence[str], enqueued_at: int | None, *, hint: bool = False) -> None:
        if not task_ids:
            return
        stmt = update(tasks).where(c.id.in_(list(task_ids)))
        if hint and self._postgres:
            stmt = stmt.where(ASYNC_COMMIT)
        self._write(stmt.values(enqueued_at=enqueued_at))

    def take_publish(self, task_id: str, attempt: int, old_enqueued: int | None, now: int) -> bool:
        cond = c.enqueued_at.is_(None) if old_enqueued is None else c.enqueued_at == old_enqueued
        return self._write(update(tasks).where(c.id == task_id, c.attempt == attempt, cond)
                           .values(enqueued_at=now)) == 1

    def due_for_publish(self, now: int, sent_before: int | None, types: Sequence[str], limit: int) -> list[Due]:
        return sweeps.due_for_publish(self.engine, now, sent_before, types, limit)

    # -- the sweeper -----------------------------------------------------------------
    def expired_leases(self, now: int, limit: int) -> list[TaskRecord]:
        return sweeps.expired_leases(self.engine, now, limit)

    def delete_expired(self, now: int, limit: int) -> int:
        return sweeps.delete_expired(self.engine, now, limit)

    # -- leases and concurrency slots --------------------------------------------------
    def extend_leases(self, owned: Mapping[str, int], lease_until: int) -> None:
        sweeps.extend_leases(self.engine, owned, lease_until)

    def acquire_slot(self, task_type: str, capacity: int, holder: str, now: int, lease_until: int) -> int | None:
        return slots.acquire(self.engine, task_type, capacity, holder, now, lease_until)

    def extend_slots(self, holders: Sequence[str], lease_until: int) -> None:
        slots.extend(self.engine, holders, lease_until)

    def release_slot(self, task_type: str, holder: str) -> None:
        slots.release(self.engine, task_type, holder)
