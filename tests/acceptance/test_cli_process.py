"""``celery -A proj bgtask ...`` and ``python -m celery_bgtask migrate`` as real processes, beside a
real ``celery worker`` (prefork) on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from celery_bgtask import BackgroundTaskComponent, TaskStatus
from tests.acceptance.procs import ROOT, celery_env, celery_worker
from tests.helpers import status_of, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.backends("postgres")]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celery", "-A", "tests.acceptance.cliapp", "bgtask", *args],
                          cwd=ROOT, env=celery_env(env), capture_output=True, text=True, timeout=120)


def test_the_commands_as_processes(env: dict[str, str], bg: BackgroundTaskComponent, tmp_path: Path) -> None:
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    with celery_worker("tests.acceptance.cliapp", env, "-P", "prefork", "-c", "2", log=tmp_path / "worker.log"):
        triggered = cli(env, "trigger", "countTo", "--input", '{"n": 4}')
        assert triggered.returncode == 0, triggered.stderr
        urn = triggered.stdout.strip()
        watched = cli(env, "watch", urn, "--interval", "0.1")
        assert watched.returncode == 0, watched.stderr
        assert "success: done" in watched.stdout
        urn_echo = bg.create("echo", {"hello": 1}, retain_for=-1)
        wait_for(lambda: status_of(bg, urn_echo) == TaskStatus.SUCCESS, what="echo ran in the worker")

    listed = cli(env, "list", "--sort", "dateCreated", "--json")
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert [(t["type"], t["status"]) for t in records] == [("countTo", "success"), ("echo", "success")]
    assert records[0]["result"] == {"counted": 4}

    stats = json.loads(cli(env, "stats", "--json").stdout)
    assert stats["counts"]["countTo"]["success"] == 1 and stats["counts"]["echo"]["success"] == 1

    for args in (["show", "0" * 31], ["show", "f" * 32], ["list", "--status", "sleeping"],
                 ["trigger", "countTo", "--input", "[1,"]):
        bad = cli(env, *args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_python_m_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deploy.sqlite3'}"
    done = subprocess.run([sys.executable, "-m", "celery_bgtask", "migrate", url], cwd=ROOT,
                          env=celery_env({}), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        assert "bgtask_tasks" in sqlalchemy.inspect(conn).get_table_names()
    engine.dispose()
    bad = subprocess.run([sys.executable, "-m", "celery_bgtask", "migrate", "nonsense://"], cwd=ROOT,
                         env=celery_env({}), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
