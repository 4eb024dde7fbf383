"""The Prometheus metrics, fed by a real worker's event bus and read from PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from celery_bgtask import TaskStatus
from celery_bgtask.contrib.prometheus import collector, instrument
from tests.helpers import status_of, wait_for

pytestmark = pytest.mark.backends("postgres")


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition text, by name and labels."""
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counts_histograms_and_gauges_after_success_failure_and_retry(make_component: Any, worker: Any) -> None:
    bg = make_component(default_retain_for=-1)
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    bg.register_handler("boom", "tests.integration.handlers", "boom")
    registry = CollectorRegistry()
    instrument(bg, registry)
    registry.register(collector(bg, max_age=0))
    ok = [bg.create("echo", {"i": i}) for i in range(2)]
    broke = bg.create("boom", {}, retry_count=1, retry_interval=1)
    with worker(bg.app):
        for urn in ok:
            wait_for(lambda u=urn: status_of(bg, u) == TaskStatus.SUCCESS, what="echo succeeded")
        wait_for(lambda: status_of(bg, broke) == TaskStatus.FAILED, what="boom failed after its retry")
    waiting = bg.create("echo", {})  # the worker has stopped: it stays pending

    got = scrape(registry)
    assert got[("bgtask_transitions_total", (("status", "success"), ("type", "echo")))] == 2
    assert got[("bgtask_transitions_total", (("status", "processing"), ("type", "echo")))] == 2
    assert got[("bgtask_transitions_total", (("status", "pending"), ("type", "boom")))] == 1  # the retry
    assert got[("bgtask_transitions_total", (("status", "processing"), ("type", "boom")))] == 2
    assert got[("bgtask_transitions_total", (("status", "failed"), ("type", "boom")))] == 1
    assert got[("bgtask_run_seconds_count", (("type", "echo"),))] == 2
    assert got[("bgtask_run_seconds_count", (("type", "boom"),))] == 2
    assert got[("bgtask_wait_seconds_count", (("type", "boom"),))] == 2
    assert got[("bgtask_run_seconds_bucket", (("le", "+Inf"), ("type", "echo")))] == 2

    assert got[("bgtask_tasks", (("status", "success"), ("type", "echo")))] == 2
    assert got[("bgtask_tasks", (("status", "pending"), ("type", "echo")))] == 1
    assert got[("bgtask_tasks", (("status", "failed"), ("type", "boom")))] == 1
    assert got[("bgtask_oldest_pending_seconds", (("type", "echo"),))] >= 0
    assert ("bgtask_oldest_pending_seconds", (("type", "boom"),)) not in got
    assert waiting


def test_the_gauges_are_cached_between_scrapes(make_component: Any) -> None:
    bg = make_component(default_retain_for=-1)
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    registry = CollectorRegistry()
    registry.register(collector(bg, max_age=3600))
    bg.create("echo", {})
    pending = ("bgtask_tasks", (("status", "pending"), ("type", "echo")))
    assert scrape(registry)[pending] == 1
    bg.create("echo", {})
    assert scrape(registry)[pending] == 1  # within max_age the second scrape did not read the database
    fresh = CollectorRegistry()
    fresh.register(collector(bg, max_age=0))
    assert scrape(fresh)[pending] == 2


@pytest.mark.parametrize("port", ["9808", 0, 70000, True])
def test_a_bad_metrics_port_is_refused(celery_app_factory: Any, make_component: Any, port: Any) -> None:
    from celery_bgtask import TaskValidationError

    with pytest.raises(TaskValidationError, match="bgtask_metrics_port"):
        make_component(celery_app_factory(bgtask_metrics_port=port))
