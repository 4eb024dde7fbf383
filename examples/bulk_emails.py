"""Many small tasks at once: ``create_many`` with ``chunk_size``, on the embedded default.

One INSERT records all the tasks; with ``chunk_size=50`` one wake-up message carries 50 of
them, so the broker and Celery's consumer handle 6 messages instead of 300. Each task
still has its own record, claim, outcome, retries and callbacks: one bad address fails
alone and is retried alone. Run it with ``python examples/bulk_emails.py``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from celery import Celery, signals
from celery.contrib.testing.worker import start_worker

from celery_bgtask import BackgroundTaskComponent, TaskStatus

app = Celery("bulk_emails")  # no broker configured: celery_bgtask picks memory://
bg = BackgroundTaskComponent(app, default_retain_for=-1, poll_interval=100)


def send_welcome(payload: dict[str, Any]) -> str:
    """The handler: a real one would talk to the mail service here."""
    if "@" not in payload["to"]:
        raise ValueError(f"not an address: {payload['to']!r}")
    return f"sent to {payload['to']}"


bg.register_handler("welcome-email", send_welcome)

messages: Counter[str] = Counter()


@signals.after_task_publish.connect
def count_messages(sender: str | None = None, **_: Any) -> None:
    messages[sender or "?"] += 1


def main() -> None:
    users = [f"user{i}@example.com" for i in range(299)] + ["no-address"]
    urns = bg.create_many("welcome-email", [{"to": u} for u in users], chunk_size=50, retry_count=1,
                          retry_interval=100)
    print(f"created {len(urns)} tasks in {sum(messages.values())} messages: {dict(messages)}")

    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = bg.query(task_type="welcome-email", task_status=TaskStatus.SUCCESS, limit=1000).entities
            failed = bg.query(task_type="welcome-email", task_status=TaskStatus.FAILED).entities
            if len(done) + len(failed) == len(urns):
                break
            time.sleep(0.05)

    print(f"success: {len(done)}, failed: {len(failed)}")
    for task in failed:
        assert task.error is not None
        print(f"failed after its retry: {task.payload} ({task.error.name}: {task.error.message})")
    first = bg.get(urns[0])
    assert first is not None
    print(f"every task keeps its own record: {first.status.value}, result {first.result!r}")
    for urn in urns:
        bg.remove(urn)


if __name__ == "__main__":
    main()
