"""Peak memory and CPU time of a process tree and of the servers, read from ``/proc`` (Linux only;
no extra dependency)."""

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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_cpu_seconds(stat: str) -> float:
    """User plus system CPU seconds in a ``/proc/<pid>/stat`` line."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def stat_command(stat: str) -> str:
    """The command name (``comm``) in a ``/proc/<pid>/stat`` line."""
    return stat.split("(", 1)[1].rsplit(")", 1)[0]


#: Where the CPU of a drain goes: the worker's main process (Celery's consumer), its pool
#: children, and the servers on this machine.
CPU_GROUPS = ("worker main", "worker children", "postgres", "redis")


def cpu_snapshot(worker_pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of every process in one of ``CPU_GROUPS``, by pid."""
    tree = {worker_pid}
    todo = [worker_pid]
    while todo:
        found = children(todo.pop())
        tree.update(found)
        todo.extend(found)
    out: dict[int, tuple[str, float]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command = stat_command(stat)
        if pid == worker_pid:
            group = "worker main"
        elif pid in tree:
            group = "worker children"
        elif command.startswith("postgres"):
            group = "postgres"
        elif command.startswith("redis-server"):
            group = "redis"
        else:
            continue
        out[pid] = (group, stat_cpu_seconds(stat))
    return out


def cpu_between(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each group used between two snapshots (a process that ended in between is not counted)."""
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, seconds) in after.items():
        used[group] += seconds - before.get(pid, (group, 0.0))[1]
    return used
