"""Quickstart on the embedded default: SQLite in the working directory, in-memory broker.

Creates tasks, runs them on a real (in-process) Celery worker, shows their records as
TWIN JSON, pages through them, and cleans up. Run it with ``make demo``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker
from pydantic import BaseModel

from celery_bgtask import BackgroundTask, BackgroundTaskComponent, TaskStatus

app = Celery("quickstart")  # no broker configured: celery_bgtask picks memory://
bg = BackgroundTaskComponent(app, default_retain_for=-1, poll_interval=100)


class ResizePayload(BaseModel):
    image_id: str
    width: int
    height: int


def resize(payload: ResizePayload) -> dict[str, Any]:
    """A handler: its pydantic annotation validates and converts the stored payload."""
    if payload.width > 10_000:
        raise ValueError(f"{payload.width}px is too wide")
    return {"image_id": payload.image_id, "location": f"s3://demo/{payload.image_id}-{payload.width}.webp"}


def on_change(task: BackgroundTask[Any, Any]) -> None:
    print(f"  callback: {task.id[:8]}… {task.type} -> {task.status.value}")


bg.register_handler("image-resize", resize, state_change_callback=on_change)


def show(task: BackgroundTask[Any, Any] | None) -> None:
    assert task is not None
    print(json.dumps(task.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2))


def main() -> None:
    ok = bg.create("image-resize", {"image_id": "hero", "width": 1920, "height": 1080})
    bad = bg.create("image-resize", {"image_id": "huge", "width": 20_000, "height": 10},
                    retry_count=1, retry_interval=200)
    batch = bg.create_many("image-resize", [{"image_id": f"thumb{i}", "width": 64, "height": 64} for i in range(5)])
    print("created", ok, bad, f"and {len(batch)} more")
    print("before any worker runs, the record already exists:")
    show(bg.get(ok))

    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        mine = [ok, bad, *batch]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [t.status for t in (bg.get(u) for u in mine) if t is not None]
            if len(states) == len(mine) and all(s.is_terminal for s in states):
                break
            time.sleep(0.05)

    print("\nthe successful task:")
    show(bg.get(ok))
    print("\nthe failing task, after its one retry:")
    show(bg.get(bad))

    print("\npaging through successes, newest first, 3 a page:")
    cursor = None
    page = 1
    while True:
        result = bg.query(task_type="image-resize", task_status=TaskStatus.SUCCESS,
                          sort_direction="desc", limit=3, cursor=cursor)
        print(f"  page {page}: {[t.payload['image_id'] for t in result.entities]}")
        if result.cursor is None:
            break
        cursor, page = result.cursor, page + 1

    for urn in [ok, bad, *batch]:
        bg.remove(urn)
    print("\nremoved the demo's records; done.")


if __name__ == "__main__":
    main()
