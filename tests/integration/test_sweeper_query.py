"""The sweeper's search for due records without a live wake-up: right answers, and on the
server databases it reads only those records, not the whole backlog."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from bench.common import plan_nodes, rows_read
from celery_bgtask.celery.sweeper import BATCH
from celery_bgtask.core.state import PROCESSING
from celery_bgtask.ids import parse_task_id
from celery_bgtask.timeutil import now_ms
from tests.helpers import insert_finished, set_fields

BACKLOG = 3000
STALE_AFTER = 300_000


pytestmark = pytest.mark.backends("postgres", "mysql")


def _backlog_and_strays(bg: Any) -> dict[str, str]:
    """A backlog of tasks whose messages are live, and one record of each kind the sweeper must find
    (or must not)."""
    for start in range(0, BACKLOG, 1000):
        bg.create_many("t", [{"n": n} for n in range(start, start + 1000)])
    now = now_ms()
    strays = {name: bg.create("t", {"stray": name}) for name in (
        "never sent", "stale message", "between iterations", "not due yet", "running", "other type")}
    set_fields(bg, strays["never sent"], enqueued_at=None)
    set_fields(bg, strays["stale message"], enqueued_at=now - STALE_AFTER - 1000)
    set_fields(bg, strays["between iterations"], status=PROCESSING, lease_until=None, enqueued_at=None)
    set_fields(bg, strays["not due yet"], enqueued_at=None, next_run_at=now + 60_000)
    set_fields(bg, strays["running"], status=PROCESSING, lease_until=now + 60_000, enqueued_at=None)
    set_fields(bg, strays["other type"], type="elsewhere", enqueued_at=None)
    _analyze(bg)
    return strays


def _analyze(bg: Any) -> None:
    """Fresh statistics, and (on PostgreSQL) no dead index entries left by earlier tests on this
    database: a bitmap index scan counts those too."""
    with bg.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE bgtask_tasks" if bg.engine.dialect.name == "postgresql"
                          else "ANALYZE TABLE bgtask_tasks"))


def _recorded(bg: Any) -> list[tuple[str, Any]]:
    """The statements the engine runs from now on, with their parameters."""
    statements: list[tuple[str, Any]] = []
    event.listen(bg.engine, "before_cursor_execute",
                 lambda _conn, _cur, sql, params, *_: statements.append((sql, params)))
    return statements


def test_due_for_publish_finds_exactly_the_records_without_a_live_message(make_component: Any) -> None:
    bg = make_component()
    strays = _backlog_and_strays(bg)
    now = now_ms()
    unsent = bg.store.due_for_publish(now, None, ["t"], BATCH)
    stale = bg.store.due_for_publish(now, now - STALE_AFTER, ["t"], BATCH)
    assert {row.id for row in unsent} == {parse_task_id(strays[k]) for k in ("never sent", "between iterations")}
    assert [row.id for row in stale] == [parse_task_id(strays["stale message"])]
    assert {row.type for row in unsent + stale} == {"t"}
    assert bg.store.due_for_publish(now, None, [], BATCH) == []
    assert len(bg.store.due_for_publish(now, None, ["t"], 1)) == 1


def test_due_for_publish_reads_the_index_not_the_backlog(make_component: Any) -> None:
    bg = make_component()
    _backlog_and_strays(bg)
    statements = _recorded(bg)
    now = now_ms()
    for sent_before, due in ((None, 2), (now - STALE_AFTER, 1)):
        assert len(bg.store.due_for_publish(now, sent_before, ["t"], BATCH)) == due
        _assert_reads_the_index(bg, *statements[-1])


def _assert_reads_the_index(bg: Any, sql: str, params: Any, *, most: float = BACKLOG / 20,
                            in_order: bool = False, index: str = "ix_bgtask_tasks_unsent", ranges: int = 2) -> None:
    """The query reads ``index``, in ``ranges`` ranges (the due query: one per arm), and at most
    ``most`` rows (not the backlog); ``in_order``: in index order, with no sort of what it read."""
    with bg.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        if bg.engine.dialect.name == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            root = cursor.fetchone()[0][0]["Plan"]
            unwanted = ("Seq Scan", "Sort") if in_order else ("Seq Scan",)
            assert not [n for n in plan_nodes(root) if n["Node Type"] in unwanted], root
            scans = [n for n in plan_nodes(root) if "Index Name" in n]
            assert len(scans) == ranges and {n["Index Name"] for n in scans} == {index}, root
            # What the server read from the table: the due records and a few it filtered out.
            read = rows_read(root)
            assert read <= most, f"read {read} rows for the due ones in a backlog of {BACKLOG}"
        else:
            # InnoDB recomputes its statistics in the background after a bulk load: settle them,
            # or the row estimate below depends on whether that has happened yet.
            cursor.execute("ANALYZE TABLE bgtask_tasks")
            cursor.fetchall()
            cursor.execute("EXPLAIN " + sql, params)
            columns = [d[0] for d in cursor.description]
            plan = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            reads = [row for row in plan if row["table"] == "bgtask_tasks"]
            assert len(reads) == ranges, plan
            for row in reads:
                assert row["key"] == index, plan
                if in_order:  # MariaDB's estimate ignores the LIMIT; no filesort means it stops there
                    assert "filesort" not in (row["Extra"] or ""), plan
                else:
                    assert int(row["rows"]) < most, plan
        cursor.close()


def test_a_stale_backlog_is_read_a_batch_at_a_time_oldest_first(make_component: Any) -> None:
    """The whole backlog older than redeliver_after (its messages still queued): a poll reads
    one batch in index order, not every stale record and a sort."""
    bg = make_component()
    _backlog_and_strays(bg)
    with bg.engine.begin() as conn:
        conn.execute(text("UPDATE bgtask_tasks SET enqueued_at = enqueued_at - :age WHERE enqueued_at IS NOT NULL"),
                     {"age": 2 * STALE_AFTER})
    _analyze(bg)
    statements = _recorded(bg)
    now = now_ms()
    found = bg.store.due_for_publish(now, now - STALE_AFTER, ["t"], 50)
    assert len(found) == 50
    assert [row.enqueued_at for row in found] == sorted(row.enqueued_at for row in found)
    _assert_reads_the_index(bg, *statements[-1], most=3 * 50, in_order=True)


def test_the_cleanup_reads_a_batch_of_expired_records_in_retention_order(make_component: Any) -> None:
    """Beside the pending backlog, 1,000 records still retained and a backlog of 3,000 expired: a
    batch of the cleanup is one range of the retention index in its order, and reads that batch,
    not every expired record (then a sort) nor the table."""
    bg = make_component()
    _backlog_and_strays(bg)
    now = now_ms()
    insert_finished(bg, 1000, now + 60_000)
    insert_finished(bg, BACKLOG, now - 100_000)
    _analyze(bg)
    statements = _recorded(bg)
    assert bg.store.delete_expired(now, 50) == 50
    [select] = [(sql, params) for sql, params in statements if "FOR UPDATE" in sql]
    _assert_reads_the_index(bg, *select, most=3 * 50, in_order=True, index="ix_bgtask_tasks_retain", ranges=1)
