"""The bench's pure helpers run here, so ``make bench`` cannot rot unnoticed (no timing is checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import procinfo, soak, throughput
from bench.apps import NOOP, make_app
from bench.report import Target, fmt, rate, ratio, table, verdicts
from bench.throughput import TARGETS, Result, median, render


def test_status_and_stat_parsing() -> None:
    status = "Name:\tcelery\nVmPeak:\t  1000 kB\nVmHWM:\t   4242 kB\nVmRSS:\t  4000 kB\n"
    assert procinfo.status_kb(status, "VmHWM") == 4242
    assert procinfo.status_kb(status, "VmSwap") == 0
    assert procinfo.parent_pid("123 (python -m (celery)) S 77 123 123 0 -1") == 77
    ticks = procinfo.CLOCK_TICKS
    stat = f"9 (postgres: x (y)) S 1 9 9 0 -1 4194560 10 0 0 0 {3 * ticks} {ticks} 0 0"
    assert procinfo.stat_command(stat) == "postgres: x (y)"
    assert procinfo.stat_cpu_seconds(stat) == 4.0


def test_cpu_between_counts_new_processes_whole_and_groups_them() -> None:
    before = {1: ("worker main", 1.0), 2: ("postgres", 5.0), 3: ("redis", 2.0)}
    after = {1: ("worker main", 1.5), 2: ("postgres", 5.25), 4: ("worker children", 0.75)}
    assert procinfo.cpu_between(before, after) == {
        "worker main": 0.5, "worker children": 0.75, "postgres": 0.25, "redis": 0.0}


@pytest.mark.skipif(not procinfo.available(), reason="needs /proc")
def test_tree_peak_of_this_process() -> None:
    own, total = procinfo.tree_peak_kb(os.getpid())
    assert own > 0 and total >= own
    assert procinfo.tree_pss_kb(os.getpid()) > 0
    sum(i * i for i in range(200_000))  # some CPU of our own to be counted
    # A child that waits on its stdin stands in for a pool process: it must be found as one.
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert procinfo.tree(os.getpid())[0] == os.getpid() and child.pid in procinfo.tree(os.getpid())
        snapshot = procinfo.cpu_snapshot(os.getpid())
        assert snapshot[child.pid][0] == "worker children"
        assert procinfo.tree_peak_kb(os.getpid())[1] > own  # the child's peak RSS is counted too
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)
    assert snapshot[os.getpid()][0] == "worker main" and snapshot[os.getpid()][1] > 0


def test_ratios_and_verdicts() -> None:
    assert rate(10, 2.0) == 5.0
    assert ratio(3.0, None) is None and ratio(3.0, 2.0) == 1.5
    assert fmt(None) == "-" and fmt(1234.4) == "1,234"
    rows = verdicts({"a": 2.0, "b": 1.0}, [Target("a vs b", "a", "b", 1.5), Target("a vs c", "a", "c", 1.0)])
    assert rows == [["a vs b", "2.00x", ">= 1.5x", "met"], ["a vs c", "-", ">= 1x", "n/a"]]
    text = table(["x", "y"], [["1", "22"]])
    assert text.splitlines()[0] == "| x | y  |"


def test_render_names_every_target() -> None:
    results = {m: median([Result(m, produce=100.0, drain=50.0, wall=1.0, rss_main_kb=1024, rss_tree_kb=2048,
                                 pss_tree_kb=1500, create_many=300.0 if m == "bgtask" else None,
                                 cpu_ms={"worker main": 1.0, "postgres": 0.25})])
               for m in ("plain", "redis", "database", "bgtask", "chunked")}
    text = render(results, {"insert+commit/s": 1.0})
    for target in TARGETS:
        assert target.label in text
    assert "| celery_bgtask, create_many chunk_size=" in text  # the chunked variant's own row
    cpu_line = next(line for line in text.splitlines() if line.startswith("| celery_bgtask") and "1.250" in line)
    assert "0.250" in cpu_line  # the CPU table: postgres's share and the sum


def test_bench_apps_build(tmp_path: Path) -> None:
    plain = make_app("plain", "memory://", "q", f"sqlite:///{tmp_path / 'p.sqlite3'}", "redis://x")
    assert NOOP in plain.app.tasks and plain.bg is None
    ours = make_app("bgtask", "memory://", "q", f"sqlite:///{tmp_path / 'b.sqlite3'}", "redis://x")
    assert ours.bg is not None and ours.bg.handler("noop") is not None
    with pytest.raises(ValueError):
        make_app("nope", "memory://", "q", "sqlite://", "redis://x")
    ours.bg.engine.dispose()


def test_messages_for_counts_one_wake_up_a_task_or_a_chunk_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throughput, "BATCH", 500)
    monkeypatch.setattr(throughput, "CHUNK", 10)
    ids = ["warm-up"] + [f"t{i}" for i in range(1234)]
    assert throughput.messages_for("bgtask", ids) == 1235
    assert throughput.messages_for("chunked", ids) == 1 + 50 + 50 + 24  # the last batch's last chunk has 4


def test_soak_slopes_tell_a_level_sawtooth_from_a_climbing_one() -> None:
    assert soak.slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert soak.slope([(5.0, 7.0)]) == 0.0 and soak.slope([(1.0, 2.0), (1.0, 4.0)]) == 0.0
    assert soak.within([(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)], 1.0, 3.0) == [(2.0, 2.0), (3.0, 3.0)]
    # Grows 100/s, a cleanup every 10 s: back to 0 when it keeps up, to 300 more each time when not.
    level = [(float(t), 100.0 * (t % 10)) for t in range(121)]
    climbing = [(float(t), 100.0 * (t % 10) + 300.0 * (t // 10)) for t in range(121)]
    assert soak.peak_growth(level, 60) == 0.0
    assert soak.peak_growth(climbing, 60) == pytest.approx(30.0)
    assert soak.peak_growth(level[:100], 60) is None  # shorter than two minutes
    assert soak.expected_level(200, 2000, 60_000) == 12_400


def test_soak_render_reports_the_peak_the_slopes_and_the_verdict() -> None:
    samples = [soak.Sample(float(t), 100 * (t % 10) + 5, 5, 100 * t) for t in range(0, 121, 5)]
    text = soak.render(samples, 100, 2000, 10_000)
    assert "expected level: rate x (retain_for + cleanup_interval) = 1,200 records" in text
    assert "peak: 505 records at 5 s (500 finished at most)" in text
    assert "growth of the peak, last minute against the minute before: +0.0 records/s" in text
    assert text.endswith("levels off under the expected level: yes")
    assert "| 120 | 5       | 0                   | 5            | 12,000  |" in text
