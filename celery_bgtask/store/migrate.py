"""Apply the shipped alembic migrations, once per engine and process.

``ensure_schema`` is what the components call on first use; ``migrate`` is the explicit
helper (also ``python -m celery_bgtask migrate URL``). Concurrent first uses from several
processes are serialised by a database lock on PostgreSQL and MySQL; on SQLite a losing
racer re-checks the version and carries on.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from .schema import meta

log = logging.getLogger(__name__)

VERSION_TABLE = "bgtask_alembic_version"
_MIGRATIONS = Path(__file__).with_name("migrations")
_done: weakref.WeakSet[Engine] = weakref.WeakSet()
_lock = threading.Lock()


def _reset_lock_after_fork() -> None:
    # A prefork child may be forked while another thread holds the lock; start it unlocked.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_after_fork)


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _with_lock(connection: Connection) -> None:
    name = connection.dialect.name
    if name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(727274001)"))
    elif name in ("mysql", "mariadb"):
        connection.execute(text("SELECT GET_LOCK('celery_bgtask_migrate', 60)"))


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema revision (idempotent)."""
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return
    try:
        with engine.begin() as conn:
            _with_lock(conn)
            if current_revision(conn) != head:
                log.info("celery_bgtask: migrating %s to revision %s", engine.url.render_as_string(), head)
                command.upgrade(_config(conn), "head")
            if conn.dialect.name in ("mysql", "mariadb"):
                conn.execute(text("SELECT RELEASE_LOCK('celery_bgtask_migrate')"))
    except (OperationalError, ProgrammingError, IntegrityError):
        # Another process may have won the race (SQLite has no lock we can take here).
        with engine.connect() as conn:
            if current_revision(conn) != head:
                raise


def ensure_schema(engine: Engine) -> None:
    """Migrate ``engine``'s database on first use in this process."""
    if engine in _done:
        return
    with _lock:
        if engine not in _done:
            migrate(engine)
            _done.add(engine)


def installation_secret(engine: Engine, key: str = "cursor_secret") -> bytes:
    """A random secret stored in the database, shared by every process that uses it."""
    with engine.begin() as conn:
        value = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
        if value is None:
            value = secrets.token_hex(32)
            try:
                with conn.begin_nested():
                    conn.execute(meta.insert().values(key=key, value=value))
            except IntegrityError:
                value = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one()
    return bytes.fromhex(value)
