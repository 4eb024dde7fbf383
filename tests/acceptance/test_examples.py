"""The example programs run to the end on the embedded default (SQLite + memory broker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.procs import ROOT, celery_env

pytestmark = pytest.mark.slow


def test_sync_articles_example_runs_by_itself(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sync_articles.py")],
        cwd=tmp_path, env=celery_env({}), capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "second trigger refused: articles are already syncing" in done.stdout
    assert "onDone: articles are synced" in done.stdout
    assert "onAbort: the sync was aborted" in done.stdout
    assert (tmp_path / "celery_bgtask.sqlite3").exists()  # the embedded default database
