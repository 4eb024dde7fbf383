"""Apply the shipped alembic migrations, once per engine and process.

``ensure_schema`` is what the components call on first use; ``migrate`` is the explicit
helper. Concurrent first uses from several processes are serialised by a database lock on
PostgreSQL and MySQL, and on SQLite (whose DDL takes no lock a racer would wait on) by an
exclusive file lock beside the database file.

Alembic is imported only when the database is not already at the newest revision: the
usual first use (an up-to-date schema) reads the version table with plain SQL and the head
revision from the migration files, which keeps alembic (about 10 MB) out of every worker
process.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

if TYPE_CHECKING:
    from alembic.config import Config

from .engine import is_sqlite
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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(None|["']([^"']+)["'])\s*$""", re.M)


def head_from_files() -> str | None:
    """The head revision read from the migration files without alembic; None if they are not a
    simple chain (then the caller asks alembic). A test checks it agrees with ``head_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = {m.group(1): m.group(3) for m in _REVISION.finditer(path.read_text())}
        if "revision" not in found or found["revision"] is None or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        if found["down_revision"] is not None:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """Whether the database is at the head revision, found without importing alembic."""
    head = head_from_files()
    if head is None:
        return False
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return list(versions) == [head]


def _with_lock(connection: Connection) -> None:
    name = connection.dialect.name
    if name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(727274001)"))
    elif name in ("mysql", "mariadb"):
        connection.execute(text("SELECT GET_LOCK('celery_bgtask_migrate', 60)"))


#: Beside a SQLite database file: held (``flock``) by the process migrating it.
SQLITE_LOCK_SUFFIX = ".migrate-lock"


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (worker and beat starting on a
    fresh file would otherwise both create the tables). Other databases: nothing to do here."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    import fcntl

    with open(path + SQLITE_LOCK_SUFFIX, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema revision (idempotent)."""
    if not is_sqlite(engine) and _at_head(engine):
        return
    # On SQLite the check itself is under the lock: a fresh file's first connections race
    # to set it up, and the lock is a local flock, cheap next to a connection.
    with _sqlite_file_lock(engine):
        if not _at_head(engine):  # another process may have migrated while we waited
            _upgrade(engine)


def _upgrade(engine: Engine) -> None:
    from alembic import command

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
        # Another process may have won the race.
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
