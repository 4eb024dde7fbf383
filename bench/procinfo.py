"""Peak memory of a process tree, read from ``/proc`` (Linux only; no extra dependency)."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def status_kb(text: str, field: str) -> int:
    """A ``kB`` field (``VmHWM``, ``VmRSS``) of a ``/proc/<pid>/status`` text; 0 when absent."""
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def parent_pid(stat: str) -> int:
    """The ppid in a ``/proc/<pid>/stat`` line (the command may contain spaces and parentheses)."""
    return int(stat.rsplit(")", 1)[1].split()[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parent_pid((entry / "stat").read_text()) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def tree_peak_kb(pid: int) -> tuple[int, int]:
    """(peak RSS of the process itself, summed peak RSS of it and all its descendants), in kB."""
    own = total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            hwm = status_kb((PROC / str(current) / "status").read_text(), "VmHWM")
        except OSError:
            continue
        if current == pid:
            own = hwm
        total += hwm
        todo.extend(children(current))
    return own, total


def tree_pss_kb(pid: int) -> int:
    """Summed PSS (each shared page counted once across the processes that share it) of the tree, in kB.

    Summing RSS counts the pages a prefork child shares with its parent twice; PSS does not.
    It is the current figure (Linux keeps no peak PSS).
    """
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            total += status_kb((PROC / str(current) / "smaps_rollup").read_text(), "Pss")
        except OSError:
            continue
        todo.extend(children(current))
    return total


def available() -> bool:
    return (PROC / str(os.getpid()) / "status").exists()
