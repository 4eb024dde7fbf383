"""A producer that dies between its transaction's commit and the wake-up's publish:
``python -m tests.integration.crash_after_commit DATABASE_URL BROKER_URL QUEUE`` prints the URN,
then exits from an ``after_commit`` listener that runs before the component's own."""

from __future__ import annotations

import os
import sys

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from celery_bgtask import BackgroundTaskComponent


def main(database_url: str, broker_url: str, queue: str) -> None:
    app = Celery("crashing-producer", broker=broker_url, set_as_current=False)
    app.conf.task_default_queue = queue
    bg = BackgroundTaskComponent(app, database_url, default_retain_for=-1)  # kept, for the test to read
    with Session(bg.engine) as session, session.begin():
        # Registered first, so it runs first: the commit is done, the publish never happens.
        event.listen(session, "after_commit", lambda _s: os._exit(0))
        urn = bg.create("echo", {"n": "crashed"}, connection=session)
        print(urn, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
