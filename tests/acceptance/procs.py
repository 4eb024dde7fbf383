"""Run ``celery worker`` subprocesses the way a user does, and stop them for sure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def celery_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def celery_worker(
    app_module: str, env: Mapping[str, str], *args: str, log: Path
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A ``celery -A app_module worker`` in its own process group; SIGKILLed on exit if still alive."""
    return _celery(app_module, env, ["worker", "--without-mingle", "--without-gossip", "--without-heartbeat", *args],
                   log)


def celery_beat(
    app_module: str, env: Mapping[str, str], *args: str, log: Path, scheduler: str = "bgtask"
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A ``celery -A app_module beat -S bgtask`` (the entry-point alias, or the class path
    given as ``scheduler``); SIGKILLed on exit if still alive."""
    return _celery(app_module, env, ["beat", "-S", scheduler, *args], log)


@contextmanager
def _celery(app_module: str, env: Mapping[str, str], args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "celery", "-A", app_module, *args[:1], "-l", "info", *args[1:]]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=celery_env(env), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        kill_group(proc)


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
