"""``TaskStore``: every read and write of task records, as SQLAlchemy Core statements.

The domain layer (component, execution) never builds SQL; it calls these methods. Each
state change is one conditional UPDATE whose WHERE clause states the state it expects
(``status``, ``attempt``), so duplicate deliveries, racing workers and racing sweepers
are harmless: exactly one of them sees ``rowcount == 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Row,
    TextClause,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)

from ..models import TaskStatus
from . import fastpath
from .engine import is_mysql
from .schema import slots, tasks
from .sql import sweeps

c = tasks.c
PENDING = TaskStatus.PENDING.value
PROCESSING = TaskStatus.PROCESSING.value
TERMINAL = (TaskStatus.SUCCESS.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)
_INSERT = insert(tasks)

#: ``query`` sort properties (camelCase and snake_case) to columns. dateCompleted is
#: nullable; NULL sorts as -1 so unfinished tasks come first when ascending.
SORT_KEYS: dict[str, str] = {
    "dateCreated": "date_created",
    "date_created": "date_created",
    "dateModified": "date_modified",
    "date_modified": "date_modified",
    "dateCompleted": "date_completed",
    "date_completed": "date_completed",
    "status": "status",
}


#: Appended to the WHERE clause of a single statement on PostgreSQL (the claim; a sent-mark):
#: ``synchronous_commit = off`` for the (implicit) transaction of that one statement only;
#: the session setting is untouched. For the claim it is safe because a later synchronous
#: commit (the final state) flushes the WAL up to itself, claim included, and a claim lost
#: to a server crash only leaves the record pending at its old attempt: the run's finish
#: then fails its fence and the sweeper runs the task again.
ASYNC_COMMIT = func.set_config("synchronous_commit", "off", True) == "off"


def _claim_statement() -> Update:
    runnable = or_(c.status == PENDING, and_(c.status == PROCESSING, c.lease_until.is_(None)))
    return (
        update(tasks)
        .where(c.id == bindparam("b_id"), c.type == bindparam("b_type"), runnable,
               c.attempt == bindparam("b_attempt"), c.next_run_at <= bindparam("b_now"))
        .values(status=PROCESSING, attempt=bindparam("b_new_attempt"), lease_until=bindparam("b_lease"),
                date_modified=bindparam("b_now"), worker=bindparam("b_worker"))
    )


def _finish_statement(columns: Sequence[str]) -> Update:
    return (
        update(tasks)
        .where(c.id == bindparam("b_id"), c.status == PROCESSING, c.attempt == bindparam("b_attempt"),
               c.lease_until.is_not(None))
        .values({k: bindparam(f"v_{k}") for k in columns})
    )


def _sort_expr(column: str) -> ColumnElement[Any]:
    if column == "date_completed":
        return func.coalesce(c.date_completed, -1)
    return tasks.c[column]


class TaskStore:
    """Task records in one database. Thread-safe; one per engine is enough."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # MariaDB/MySQL have no UPDATE ... RETURNING; read back in the same transaction.
        self._returning = not is_mysql(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else None
        self._statements: dict[Hashable, Update] = {}
        self._fast = fastpath.FastWrites(engine, [col.key for col in tasks.c]) if fastpath.supported(engine) else None
        self._unnest: dict[tuple[str, ...], TextClause] = {}

    def close_held(self) -> None:
        """Close the connections this process's threads hold for claims and finishes (if any)."""
        if self._fast is not None:
            self._fast.close_held()

    def _one_statement(self) -> AbstractContextManager[Connection]:
        """A connection for a write that is a single statement.

        On PostgreSQL it runs in autocommit: the statement is its own transaction, just as
        atomic, in one round trip instead of BEGIN, the statement and COMMIT. Elsewhere it
        is an ordinary transaction.
        """
        if self._autocommit is not None:
            return self._autocommit.connect()
        return self.engine.begin()

    def _write(self, stmt: Executable) -> int:
        with self._one_statement() as conn:
            return conn.execute(stmt).rowcount

    # -- writes from producers -------------------------------------------------------
    def insert(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """All the rows or none: one statement (on PostgreSQL, and for one row), else one transaction.

        On PostgreSQL several rows go as ONE multi-row INSERT that takes a column of values
        per parameter (``INSERT ... SELECT * FROM unnest(:ids, :types, ...)``): a short
        query whatever the batch size. A VALUES list of 23 parameters a row is a query of
        thousands of placeholders, and psycopg spends more time parsing it than the server
        spends inserting. Elsewhere SQLAlchemy's executemany does the batching.
        """
        rows = list(rows)
        if len(rows) == 1:
            if self._fast is not None:
                names = tuple(rows[0])
                self._fast.execute(("insert", names), lambda: _INSERT.values({k: bindparam(f"p_{k}") for k in names}),
                                   {f"p_{k}": v for k, v in rows[0].items()})
                return
            with self._one_statement() as conn:
                conn.execute(_INSERT, rows[0])
            return
        if self._postgres:
            names = tuple(rows[0])
            if all(tuple(row) == names for row in rows):
                columns = {name: [row[name] for row in rows] for name in names}
                with self._one_statement() as conn:
                    conn.execute(self._unnest_insert(names), columns)
                return
        with self.engine.begin() as conn:
            conn.execute(_INSERT, rows)

    def _unnest_insert(self, names: tuple[str, ...]) -> TextClause:
        stmt = self._unnest.get(names)
        if stmt is None:
            type_of = self.engine.dialect.type_compiler_instance.process
            arrays = ", ".join(f"CAST(:{n} AS {type_of(tasks.c[n].type)}[])" for n in names)
            stmt = self._unnest[names] = text(f"INSERT INTO {tasks.name} ({', '.join(names)}) "
                                              f"SELECT * FROM unnest({arrays})")
        return stmt

    def get(self, task_id: str) -> Row[Any] | None:
        with self.engine.connect() as conn:
            return conn.execute(select(tasks).where(c.id == task_id)).first()

    def delete(self, task_id: str) -> bool:
        return self._write(delete(tasks).where(c.id == task_id)) == 1

    def set_enqueued(self, task_id: str, enqueued_at: int | None) -> None:
        self._write(update(tasks).where(c.id == task_id).values(enqueued_at=enqueued_at))

    def release_wakeup(self, task_id: str, task_type: str, attempt: int) -> None:
        """A wake-up that will not run its task here: mark it unsent, so a sweeper sends another.

        Only when the wake-up is the record's (type and attempt), so a stale or crafted one changes nothing.
        """
        self._write(update(tasks).where(c.id == task_id, c.type == task_type, c.attempt == attempt)
                    .values(enqueued_at=None))

    def set_enqueued_many(self, task_ids: Sequence[str], enqueued_at: int | None, *, hint: bool = False) -> None:
        """``hint``: the mark only saves a sweeper a duplicate wake-up (which the claim fences
        off) if it is lost, so on PostgreSQL it commits without waiting for the WAL flush."""
        if task_ids:
            stmt = update(tasks).where(c.id.in_(list(task_ids)))
            if hint and self._postgres:
                stmt = stmt.where(ASYNC_COMMIT)
            self._write(stmt.values(enqueued_at=enqueued_at))

    def transition(
        self,
        task_id: str,
        where: Iterable[ColumnElement[bool]],
        values: Mapping[str, Any],
    ) -> Row[Any] | None:
        """Conditionally update one record; return the new row, or None if the condition failed."""
        stmt = update(tasks).where(c.id == task_id, *where).values(**values)
        return self._run_prepared(self._finalize(stmt, async_commit=False), {}, task_id)

    def _finalize(self, stmt: Update, async_commit: bool) -> Update:
        """Add what the dialect needs: RETURNING the new row, and the claim's async commit."""
        if not self._returning:
            return stmt
        if async_commit and self._postgres:
            stmt = stmt.where(ASYNC_COMMIT)
        return stmt.returning(*tasks.c)

    def _prepared(self, key: Hashable, build: Callable[[], Update], async_commit: bool = False) -> Update:
        """A hot statement built once with bind parameters: building one costs more than running it.

        (SQLAlchemy caches the compiled SQL either way, but constructing the statement each
        call is hundreds of microseconds of Python; a prebuilt one keeps its cache key too.)
        """
        stmt = self._statements.get(key)
        if stmt is None:
            stmt = self._statements[key] = self._finalize(build(), async_commit)
        return stmt

    def _run_prepared(
        self, stmt: Update, params: Mapping[str, Any], task_id: str, hot: bool = False
    ) -> Row[Any] | None:
        """Run a conditional UPDATE of the record ``task_id``: the new row, or None if it matched none.

        ``hot``: ``stmt`` came from ``_prepared`` (built once, kept): on psycopg it runs on the fast path.
        """
        if hot and self._fast is not None:
            return self._fast.update_one(stmt, params)
        if self._returning:
            with self._one_statement() as conn:
                return conn.execute(stmt, dict(params)).first()
        with self.engine.begin() as conn:
            if conn.execute(stmt, dict(params)).rowcount != 1:
                return None
            return conn.execute(select(tasks).where(c.id == task_id)).first()

    # -- query ---------------------------------------------------------------------
    def page(
        self,
        *,
        task_type: str | None,
        status: str | None,
        sort_column: str,
        descending: bool,
        after: tuple[Any, str] | None,
        limit: int,
    ) -> list[Row[Any]]:
        """One keyset page, ordered by (sort key, id); ``after`` is the previous page's last key."""
        key = _sort_expr(sort_column)
        stmt = select(tasks)
        if task_type is not None:
            stmt = stmt.where(c.type == task_type)
        if status is not None:
            stmt = stmt.where(c.status == status)
        if after is not None:
            bound = tuple_(key, c.id)
            value = tuple_(*after)
            stmt = stmt.where(bound < value if descending else bound > value)
        order = (key.desc(), c.id.desc()) if descending else (key.asc(), c.id.asc())
        stmt = stmt.order_by(*order).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt))

    # -- execution -----------------------------------------------------------------
    def claim(self, task_id: str, task_type: str, expected_attempt: int, now: int, lease_until: int,
              worker: str) -> Row[Any] | None:
        """pending (or between iterations), due, of ``task_type``, at ``expected_attempt`` -> processing
        under a lease. The type is checked too: the wake-up's type chose the handler.

        Committed asynchronously on PostgreSQL: a lost claim is harmless (see ``ASYNC_COMMIT``).
        """
        stmt = self._prepared("claim", _claim_statement, async_commit=True)
        params = {"b_id": task_id, "b_type": task_type, "b_attempt": expected_attempt,
                  "b_now": now, "b_new_attempt": expected_attempt + 1,
                  "b_lease": lease_until, "b_worker": worker}
        return self._run_prepared(stmt, params, task_id, hot=True)

    def finish(self, task_id: str, attempt: int, values: Mapping[str, Any]) -> Row[Any] | None:
        """Write the outcome of a run we still own (fenced by ``attempt``)."""
        columns = tuple(sorted(values))
        stmt = self._prepared(("finish", columns), lambda: _finish_statement(columns))
        params = {f"v_{k}": v for k, v in values.items()}
        params.update(b_id=task_id, b_attempt=attempt)
        return self._run_prepared(stmt, params, task_id, hot=True)

    def extend_leases(self, owned: Mapping[str, int], lease_until: int) -> None:
        """Heartbeat: push out the lease of every (id, attempt) this process is running."""
        if not owned:
            return
        with self.engine.begin() as conn:
            for task_id, attempt in owned.items():
                conn.execute(
                    update(tasks)
                    .where(c.id == task_id, c.attempt == attempt, c.status == PROCESSING)
                    .values(lease_until=lease_until)
                )

    def due_for_publish(self, now: int, sent_before: int | None, types: Sequence[str], limit: int) -> list[Row[Any]]:
        """Runnable records of the given types that need a wake-up: never sent (``sent_before``
        None; earliest due first), or sent before ``sent_before`` and still not claimed
        (oldest message first).

        The two are asked apart so a backlog of the second kind, which the sweeper may leave
        alone while its messages wait in the queue, never hides a record of the first. Each
        is the union of two ordered, limited range scans of the index ``(status,
        enqueued_at, next_run_at)`` (pending; between iterations), so a poll reads at most
        ``limit`` records of each whatever the backlog. Filtering all due records by
        ``enqueued_at`` read the whole backlog on every poll: 200,000 pending tasks cost
        about 60 ms a poll (``bench.sweeper_poll``), on every worker, every second; so did
        one OR of the two arms ordered by ``enqueued_at`` once the whole backlog was stale
        (PostgreSQL chose a sequential scan and a sort, 62 ms a poll). Now 0.05-0.3 ms of
        server time a query.
        """
        if not types:
            return []
        sent = c.enqueued_at.is_(None) if sent_before is None else c.enqueued_at < sent_before
        order = c.next_run_at if sent_before is None else c.enqueued_at
        arms = [
            select(c.id, c.type, c.thread_id, c.attempt, c.enqueued_at, order.label("o"))
            .where(status, sent, c.next_run_at <= now, c.type.in_(list(types)))
            .order_by(order)
            .limit(limit)
            .subquery()
            for status in (c.status == PENDING, and_(c.status == PROCESSING, c.lease_until.is_(None)))
        ]
        both = union_all(*(select(arm) for arm in arms)).subquery()
        stmt = select(both.c.id, both.c.type, both.c.thread_id, both.c.attempt, both.c.enqueued_at)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt.order_by(both.c.o).limit(limit)))

    def take_publish(self, task_id: str, attempt: int, old_enqueued: int | None, now: int) -> bool:
        """Compare-and-set ``enqueued_at`` so one sweeper publishes a given wake-up."""
        cond = c.enqueued_at.is_(None) if old_enqueued is None else c.enqueued_at == old_enqueued
        stmt = update(tasks).where(c.id == task_id, c.attempt == attempt, cond).values(enqueued_at=now)
        return self._write(stmt) == 1

    def expired_leases(self, now: int, limit: int) -> list[Row[Any]]:
        stmt = (
            select(tasks)
            .where(c.status == PROCESSING, c.lease_until.is_not(None), c.lease_until < now)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).all())

    def delete_expired(self, now: int, limit: int) -> int:
        """Delete up to ``limit`` finished records past retention, skipping those another sweeper
        holds; how many went (``sql.sweeps.delete_expired``)."""
        return sweeps.delete_expired(self.engine, now, limit)

    # -- concurrency slots -----------------------------------------------------------
    def acquire_slot(self, task_type: str, capacity: int, holder: str, now: int, lease_until: int) -> int | None:
        """Take a free (or expired) slot of ``task_type``; None when all ``capacity`` are held."""
        with self.engine.begin() as conn:
            have = select(slots.c.slot).where(slots.c.type == task_type, slots.c.slot < capacity)
            existing = {r[0] for r in conn.execute(have)}
            missing = [{"type": task_type, "slot": n, "holder": None, "lease_until": None}
                       for n in range(capacity) if n not in existing]
        if missing:
            for row in missing:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(insert(slots), [row])
                except Exception:
                    pass
        for n in range(capacity):
            free = or_(slots.c.holder.is_(None), slots.c.lease_until < now, slots.c.holder == holder)
            stmt = (
                update(slots)
                .where(slots.c.type == task_type, slots.c.slot == n, free)
                .values(holder=holder, lease_until=lease_until)
            )
            with self.engine.begin() as conn:
                if conn.execute(stmt).rowcount == 1:
                    return n
        return None

    def extend_slots(self, holders: Iterable[str], lease_until: int) -> None:
        ids = list(holders)
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(update(slots).where(slots.c.holder.in_(ids)).values(lease_until=lease_until))

    def release_slot(self, task_type: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(slots)
                .where(slots.c.type == task_type, slots.c.holder == holder)
                .values(holder=None, lease_until=None)
            )
