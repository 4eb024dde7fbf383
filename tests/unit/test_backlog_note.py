"""``Backlog.note``: the newest send time per queue, from well-formed wake-up headers only."""

from __future__ import annotations

from celery import Celery

from celery_bgtask.celery.backlog import SENT_HEADER, Backlog


def test_note_keeps_the_newest_send_time_of_each_queue_and_ignores_malformed_headers() -> None:
    backlog = Backlog(Celery("t", broker="memory://", set_as_current=False))
    for headers in ({SENT_HEADER: ["a", 200]}, {SENT_HEADER: ["a", 100]}, {SENT_HEADER: ["b", 50]},
                    {SENT_HEADER: ["a", "300"]}, {SENT_HEADER: [None, 400]}, {SENT_HEADER: ["a"]},
                    {SENT_HEADER: "a"}, {}, None):
        backlog.note(headers)
    assert backlog.received == {"a": 200, "b": 50}
