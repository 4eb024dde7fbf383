"""The example programs run to the end on the embedded default (SQLite + memory broker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.procs import ROOT, celery_env

pytestmark = pytest.mark.slow


def run_example(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` as a user would, in an empty directory; it must exit 0."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=cwd, env=celery_env({}), capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_sync_articles_example_runs_by_itself(tmp_path: Path) -> None:
    done = run_example("sync_articles.py", tmp_path)
    assert "second trigger refused: articles are already syncing" in done.stdout
    assert "onDone: articles are synced" in done.stdout
    assert "onAbort: the sync was aborted" in done.stdout
    assert (tmp_path / "celery_bgtask.sqlite3").exists()  # the embedded default database


def test_daily_sync_example_runs_by_itself(tmp_path: Path) -> None:
    done = run_example("daily_sync.py", tmp_path)
    assert "daily-sync has 1 time:" in done.stdout
    assert '"intervalDays": 1' in done.stdout
    assert "cache warmed" in done.stdout
    assert done.stdout.count("sync running at") == 1  # the report missed three days and fired once
    assert "warm-cache: success" in done.stdout and "daily-report: success" in done.stdout
    assert "warm-cache: next never again" in done.stdout
    assert (tmp_path / "celery_bgtask.sqlite3").exists()  # the embedded default database


def test_bulk_emails_example_runs_by_itself(tmp_path: Path) -> None:
    done = run_example("bulk_emails.py", tmp_path)
    assert "created 300 tasks in 6 messages: {'celery_bgtask.run_many': 6}" in done.stdout
    assert "success: 299, failed: 1" in done.stdout
    assert "failed after its retry: {'to': 'no-address'} (ValueError" in done.stdout
    assert "every task keeps its own record: success, result 'sent to user0@example.com'" in done.stdout


def test_durable_tasks_example_runs_by_itself(tmp_path: Path) -> None:
    done = run_example("durable_tasks.py", tmp_path)
    assert "types: __main__.welcome_email, invoice-pdf" in done.stdout
    assert "'sent to ada@example.com', state SUCCESS" in done.stdout
    assert "{'invoice': 7, 'pages': 2}" in done.stdout
    assert "failed: ValueError: not an address: 'no-address' (state FAILURE)" in done.stdout
    assert "the record: __main__.welcome_email success, retries left 2" in done.stdout


def test_beat_entries_example_runs_by_itself(tmp_path: Path) -> None:
    done = run_example("beat_entries.py", tmp_path)
    assert done.stdout.count("heartbeat of db") >= 3  # the entry fired, with its args
    assert "heartbeat: every 1 s, paused True" in done.stdout and "(success)" in done.stdout
    assert "weekday-report: cron '0 9 * * 1-5' in Europe/Berlin, paused False" in done.stdout
    assert "last fired - (never)" in done.stdout
