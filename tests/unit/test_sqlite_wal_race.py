"""Fresh connections to a fresh SQLite file, opened at once, all come up in WAL mode.

Switching to WAL upgrades a lock, and SQLite answers one of two connections that upgrade at
once "database is locked" without waiting on busy_timeout; a worker and a beat starting on a
fresh file used to crash there (CI saw it once in the three-process race test).
"""

from __future__ import annotations

import threading
from pathlib import Path

from celery_bgtask.store.engine import make_engine

FILES = 100
CONNECTIONS = 6


def _open_at_once(url: str) -> tuple[list[BaseException], set[str]]:
    engines = [make_engine(url) for _ in range(CONNECTIONS)]
    barrier = threading.Barrier(CONNECTIONS)
    errors: list[BaseException] = []
    modes: set[str] = set()

    def connect(index: int) -> None:
        barrier.wait()
        try:
            with engines[index].connect() as conn:
                modes.add(str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()))
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=connect, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    return errors, modes


def test_connections_opened_at_once_on_a_fresh_file_all_switch_to_wal(tmp_path: Path) -> None:
    for n in range(FILES):
        errors, modes = _open_at_once(f"sqlite:///{tmp_path / f'fresh{n}.sqlite3'}")
        assert not errors, f"file {n}: {errors[0]!r}"
        assert modes == {"wal"}
