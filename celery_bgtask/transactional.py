"""Transactional create (``connection=``): the records are inserted in the caller's own
SQLAlchemy transaction and their wake-ups go out only after it commits.

The rows are inserted with no wake-up stamp (``enqueued_at`` NULL), which is exactly what a
worker's sweeper publishes. So a rollback leaves nothing, and a process that dies between the
commit and the publish loses nothing: the sweeper publishes the rows at its next poll. With a
``Session`` the wake-ups are published at once from its ``after_commit`` event, each claimed
first by the same compare-and-set the sweeper uses, so the two never both send one.
A bare ``Connection`` has no after-commit event, so its rows are published by the sweeper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from .celery.publish import Wakeup
from .core.record import TaskRecord
from .errors import TaskValidationError
from .timeutil import now_ms
from .writes import Writer

log = logging.getLogger("celery_bgtask.component")

#: What ``create(..., connection=)`` accepts.
Transactional = Connection | Session


def insert_in_transaction(writer: Writer, engine: Engine, connection: object, records: Sequence[TaskRecord],
                          chunk_size: int = 1) -> None:
    """Insert ``records`` in the caller's transaction; publish their wake-ups once it commits."""
    conn, session = _join(connection, engine)
    writer.ensure_ready()
    writer.store.insert_in(conn, records)
    if session is not None:
        _after_commit(session, lambda: _publish_unsent(writer, records, chunk_size))


def _join(connection: object, engine: Engine) -> tuple[Connection, Session | None]:
    """The caller's connection and session, checked: inside a transaction, on our database."""
    if isinstance(connection, Session):
        if not connection.in_transaction():
            raise TaskValidationError("connection", "the Session must be inside a transaction (session.begin())")
        conn, session = connection.connection(), connection
    elif isinstance(connection, Connection):
        if not connection.in_transaction():
            raise TaskValidationError("connection", "the Connection must be inside a transaction (conn.begin())")
        conn, session = connection, None
    else:
        raise TaskValidationError("connection", "must be an SQLAlchemy Connection or Session inside a transaction, "
                                                f"got {type(connection).__name__}")
    if _where(conn.engine) != _where(engine):
        raise TaskValidationError("connection", "must be a connection to the component's own database")
    return conn, session


def _where(engine: Engine) -> tuple[object, ...]:
    url = engine.url
    return url.get_backend_name(), url.host, url.port, url.database


def _publish_unsent(writer: Writer, records: Sequence[TaskRecord], chunk_size: int) -> None:
    """Publish the due records no sweeper has taken yet (after the commit: errors are logged,
    and whatever was not sent is left to the sweeper)."""
    try:
        stamp = now_ms()
        wakeups = [Wakeup(r.id, 0, r.thread_id, r.type, stamp) for r in records
                   if r.next_run_at is not None and r.next_run_at <= stamp
                   and writer.store.take_publish(r.id, 0, None, stamp)]
        if wakeups:
            writer.publish(wakeups, chunk_size)
    except Exception:  # the caller's commit is done: log, and the sweeper publishes what is left
        log.exception("publishing %d task(s) after the caller's commit failed; a worker's sweeper publishes them",
                      len(records))


_PENDING = "celery_bgtask.after_commit"


def _after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` when the session's transaction commits, or drop it if it rolls back. The
    actions wait in ``session.info``; the two listeners are added once per session."""
    pending: list[Callable[[], None]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _committed)
        event.listen(session, "after_rollback", _rolled_back)
    pending.append(action)


def _committed(session: Session) -> None:
    actions = session.info.get(_PENDING) or []
    session.info[_PENDING] = []
    for action in actions:
        action()


def _rolled_back(session: Session) -> None:
    session.info[_PENDING] = []
