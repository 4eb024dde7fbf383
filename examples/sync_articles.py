"""The Webiny "Sync Articles" task definition, ported to celery_bgtask.

Runs on the embedded default (SQLite in the working directory, in-memory broker) with an
in-process Celery worker, and finishes by itself in a second or two:

- the run syncs articles page by page; each iteration works until it is close to its
  soft time limit (or the batch is done), then answers ``continue_`` with the next
  offset, which is committed, so a crashed worker would resume from there;
- ``on_before_trigger`` refuses a second sync while one is running;
- a second, delayed sync is aborted before it starts;
- ``create_many`` with the definition's id refuses a batch with one bad input;
- the hooks print what a real deployment would notify another system about.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker
from pydantic import BaseModel

from celery_bgtask import BackgroundTask, BackgroundTaskComponent, TaskContext, TaskStatus, TaskValidationError

app = Celery("sync_articles")  # no broker configured: celery_bgtask picks memory://
bg = BackgroundTaskComponent(app, default_retain_for=-1, poll_interval=100)

ARTICLES = [f"article-{n}" for n in range(120)]  # stands in for the Webiny side
synced: list[str] = []  # stands in for "another system"


class SyncInput(BaseModel):
    offset: int = 0
    batch: int = 40


class AlreadySyncing(Exception):
    pass


def refuse_if_running(sync_input: SyncInput) -> None:
    """Webiny's ``onBeforeTrigger``: raise to block the trigger (nothing is written)."""
    for status in (TaskStatus.PENDING, TaskStatus.PROCESSING):
        if bg.query(task_type="syncArticles", task_status=status, limit=1).entities:
            raise AlreadySyncing("articles are already syncing")


def notify(what: str) -> Any:
    def hook(task: BackgroundTask[Any, Any]) -> None:
        detail = task.result if task.error is None else f"{task.error.name}: {task.error.message}"
        print(f"  {what}: task {task.id[:8]}… is {task.status.value} ({detail})")

    return hook


@bg.definition(
    id="syncArticles",
    title="Sync Articles",
    description="A task which syncs Webiny articles with another system.",
    max_iterations=1000,
    input_model=SyncInput,
    soft_time_limit=0.5,
    on_before_trigger=refuse_if_running,
    on_done=notify("onDone: articles are synced"),
    on_error=notify("onError: articles are not synced"),
    on_abort=notify("onAbort: the sync was aborted"),
    on_max_iterations=notify("onMaxIterations: gave up"),
)
def sync_articles(ctx: TaskContext[SyncInput]) -> Any:
    if ctx.runtime.is_aborted():
        return ctx.response.aborted()
    offset = ctx.input.offset
    end = min(offset + ctx.input.batch, len(ARTICLES))
    while offset < end and not ctx.runtime.is_close_to_timeout():
        synced.append(ARTICLES[offset])  # the real work: push one article to the other system
        offset += 1
    print(f"  iteration {ctx.iteration}: synced up to {offset}")
    if offset >= len(ARTICLES):
        return ctx.response.done({"synced": offset, "iterations": ctx.iteration})
    return ctx.response.continue_({"offset": offset})


def wait_until_finished(urn: str, timeout: float = 30) -> BackgroundTask[Any, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = bg.get(urn)
        if task is not None and task.status.is_terminal:
            return task
        time.sleep(0.05)
    raise TimeoutError(f"{urn} did not finish within {timeout}s")


def main() -> None:
    print("definitions:", [d.model_dump() for d in bg.definitions()])
    urn = bg.trigger("syncArticles", {"offset": 0})
    print("triggered", urn)
    try:
        bg.trigger("syncArticles", {"offset": 0})
    except AlreadySyncing as exc:
        print("second trigger refused:", exc)

    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        task = wait_until_finished(urn)
    print("finished:", task.status.value, task.result, f"({len(synced)} articles in the other system)")

    later = bg.trigger("syncArticles", {"offset": 0}, delay=3600)
    print("a delayed sync", later, "aborted:", bg.abort(later, "not needed any more"))
    print("aborting it again is a no-op:", bg.abort(later))

    for done in (urn, later):
        bg.remove(done)

    # create_many with a definition's id validates every input as trigger does: all or nothing.
    try:
        bg.create_many("syncArticles", [{"offset": 0}, {"offset": "lots"}])
    except TaskValidationError as exc:
        print("create_many refused a bad input, nothing written:", exc)
    assert not bg.query(task_type="syncArticles").entities
    assert task.status is TaskStatus.SUCCESS and synced == ARTICLES


if __name__ == "__main__":
    main()
