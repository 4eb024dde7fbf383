"""From ``@app.task`` to durable tasks by changing the decorator, on the embedded default.

The module this started as was plain Celery::

    @app.task
    def welcome_email(payload): ...

    welcome_email.delay({"to": "ada@example.com"})

With ``@bg.task`` each call is a database record (retries, retention, queries, a crash of
the worker loses nothing), ``.delay()`` still returns a Celery ``AsyncResult``, and with
``result_backend = "bgtask://"`` that result is read from the record. Run it with
``python examples/durable_tasks.py``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker

from celery_bgtask import BackgroundTaskComponent

app = Celery("durable_tasks", backend="bgtask://")  # no broker configured: celery_bgtask picks memory://
# Results are read from the records, so they must outlive the wait: kept a minute by default here.
bg = BackgroundTaskComponent(app, poll_interval=100, default_retain_for=60_000)


@bg.task(retry_count=2, retry_interval=100, retain_for=86_400_000)  # was: @app.task
def welcome_email(payload: dict[str, Any]) -> str:
    """The handler: a real one would talk to the mail service here."""
    if "@" not in payload["to"]:
        raise ValueError(f"not an address: {payload['to']!r}")
    return f"sent to {payload['to']}"


@bg.task("invoice-pdf")  # a type of your choosing instead of module.qualname
def invoice_pdf(payload: dict[str, Any]) -> dict[str, Any]:
    return {"invoice": payload["invoice"], "pages": 2}


def main() -> None:
    # The demo's worker runs in this process, where Celery refuses a blocking get() unless told
    # it is not inside a task; a web process or script of your own needs no such flag.
    wait: dict[str, Any] = {"timeout": 10, "disable_sync_subtasks": False}
    print(f"types: {welcome_email.type}, {invoice_pdf.type}")
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        sent = welcome_email.delay({"to": "ada@example.com"})
        print(f"delay() -> AsyncResult {sent.id}: {sent.get(**wait)!r}, state {sent.state}")
        urn = invoice_pdf.create({"invoice": 7})
        print(f"create() -> {urn}: {app.AsyncResult(urn).get(**wait)!r}")
        bad = welcome_email.delay({"to": "no-address"}, retry_count=0)  # a call overrides the defaults
        try:
            bad.get(**wait)
        except ValueError as exc:
            print(f"failed: {type(exc).__name__}: {exc} (state {bad.state})")
    record = bg.get(sent.id)
    assert record is not None
    print(f"the record: {record.type} {record.status.value}, retries left {record.retries_remaining}")


if __name__ == "__main__":
    main()
