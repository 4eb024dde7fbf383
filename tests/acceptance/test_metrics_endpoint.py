"""A prefork worker's ``/metrics``: the children's counts and histograms, summed, and the gauges."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from celery_bgtask import BackgroundTaskComponent, TaskStatus
from tests.acceptance.procs import celery_worker
from tests.helpers import status_of, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.backends("postgres")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_prefork_children_reach_the_endpoint(env: dict[str, str], bg: BackgroundTaskComponent, tmp_path: Path) -> None:
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    bg.register_handler("boom", "tests.integration.handlers", "boom")
    port = free_port()
    env = {**env, "BGTASK_METRICS_PORT": str(port)}
    log = tmp_path / "worker.log"
    with celery_worker("tests.acceptance.cliapp", env, "-P", "prefork", "-c", "2", log=log):
        ok = [bg.create("echo", {"i": i}, retain_for=-1) for i in range(6)]
        broke = bg.create("boom", {}, retry_count=1, retry_interval=1, retain_for=-1)
        for urn in ok:
            wait_for(lambda u=urn: status_of(bg, u) == TaskStatus.SUCCESS, timeout=60, what="echo succeeded")
        wait_for(lambda: status_of(bg, broke) == TaskStatus.FAILED, timeout=60, what="boom failed after its retry")
        got = wait_for(lambda: (m := scrape(port)) is not None
                       and m.get(("bgtask_transitions_total", (("status", "failed"), ("type", "boom")))) == 1 and m,
                       timeout=30, what="the endpoint shows the failure")
    children = {line.split("/")[1].split("]")[0] for line in log.read_text().splitlines()
                if "(type echo) success" in line or "(type boom)" in line}
    assert children and all(c.startswith("ForkPoolWorker") for c in children)  # the counts came from children
    assert got[("bgtask_transitions_total", (("status", "success"), ("type", "echo")))] == 6
    assert got[("bgtask_transitions_total", (("status", "pending"), ("type", "boom")))] == 1
    assert got[("bgtask_run_seconds_count", (("type", "echo"),))] == 6
    assert got[("bgtask_run_seconds_count", (("type", "boom"),))] == 2
    assert got[("bgtask_wait_seconds_count", (("type", "echo"),))] == 6
    assert got[("bgtask_tasks", (("status", "success"), ("type", "echo")))] == 6
    assert got[("bgtask_tasks", (("status", "failed"), ("type", "boom")))] == 1
