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


def stats() -> dict[int, str]:
    """Every process's ``/proc/<pid>/stat`` line, by pid, read in one pass."""
    found: dict[int, str] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "stat").read_text()
            except OSError:  # ended while we looked
                continue
    return found


def tree(pid: int, lines: dict[int, str] | None = None) -> list[int]:
    """``pid`` and all its descendants (from one ``stats()`` pass unless ``lines`` are given)."""
    kids: dict[int, list[int]] = {}
    for child, line in (stats() if lines is None else lines).items():
        kids.setdefault(parent_pid(line), []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(kids.get(current, ()))
    return found


def _tree_kb(pid: int, name: str, field: str) -> dict[int, int]:
    """``field`` of ``/proc/<pid>/<name>`` for every process of the tree, by pid."""
    found: dict[int, int] = {}
    for member in tree(pid):
        try:
            found[member] = status_kb((PROC / str(member) / name).read_text(), field)
        except OSError:
            continue
    return found


def tree_peak_kb(pid: int) -> tuple[int, int]:
    """(peak RSS of the process itself, summed peak RSS of it and all its descendants), in kB."""
    peaks = _tree_kb(pid, "status", "VmHWM")
    return peaks.get(pid, 0), sum(peaks.values())


def tree_pss_kb(pid: int) -> int:
    """Summed PSS (each shared page counted once across the processes that share it) of the tree, in kB.

    Summing RSS counts the pages a prefork child shares with its parent twice; PSS does not.
    It is the current figure (Linux keeps no peak PSS).
    """
    return sum(_tree_kb(pid, "smaps_rollup", "Pss").values())


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
    """CPU seconds so far of every process in one of ``CPU_GROUPS``, by pid (one pass over ``/proc``:
    it runs while the worker drains, on the same cores)."""
    lines = stats()
    workers = set(tree(worker_pid, lines))
    out: dict[int, tuple[str, float]] = {}
    for pid, line in lines.items():
        command = stat_command(line)
        if pid == worker_pid:
            group = "worker main"
        elif pid in workers:
            group = "worker children"
        elif command.startswith("postgres"):
            group = "postgres"
        elif command.startswith("redis-server"):
            group = "redis"
        else:
            continue
        out[pid] = (group, stat_cpu_seconds(line))
    return out


def cpu_between(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each group used between two snapshots (a process that ended in between is not counted)."""
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, seconds) in after.items():
        used[group] += seconds - before.get(pid, (group, 0.0))[1]
    return used
