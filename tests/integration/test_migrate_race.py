"""Processes that start at once on a fresh SQLite file all come up: the first migration is serialised."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from celery_bgtask.store.migrate import head_from_files
from tests.acceptance.procs import ROOT, celery_env
from tests.helpers import wait_for

FILES = 3
RACERS = 3  # per file: a worker, a beat and a web process starting together


def test_three_processes_migrating_a_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    go = tmp_path / "go"
    racers = []
    for f in range(FILES):  # several fresh files at once, so that a lost race is all but certain
        url = f"sqlite:///{tmp_path / f'fresh{f}.sqlite3'}"
        for n in range(RACERS):
            ready = tmp_path / f"ready{f}-{n}"
            proc = subprocess.Popen([sys.executable, "-m", "tests.integration.migrate_racer", url, str(ready), str(go)],
                                    cwd=ROOT, env=celery_env({}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            racers.append((url, ready, proc))
    try:
        wait_for(lambda: all(ready.exists() or proc.poll() is not None for _, ready, proc in racers), timeout=60,
                 what="every racer to be ready")
        go.touch()
        outputs = [(url, proc.wait(60), proc.stdout.read().decode() if proc.stdout else "") for url, _, proc in racers]
    finally:
        for _, _, proc in racers:
            if proc.poll() is None:
                proc.kill()
    failed = [out for _, code, out in outputs if code != 0]
    assert not failed, failed[0]
    for f in range(FILES):
        engine = create_engine(f"sqlite:///{tmp_path / f'fresh{f}.sqlite3'}")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM bgtask_alembic_version")).scalars().all() == [
                head_from_files()
            ]
        engine.dispose()
