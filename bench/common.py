"""What the benches share: a throwaway PostgreSQL database per run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text

ADMIN_URL = os.environ.get("BGTASK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def throwaway_database(suffix: str = "") -> Iterator[str]:
    """Create a database named after this process, yield its URL, and drop it afterwards."""
    name = f"bgtask_bench_{os.getpid()}{suffix}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a PostgreSQL ``EXPLAIN (FORMAT JSON)`` plan, from ``node`` down."""
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def rows_read(node: dict[str, Any]) -> int:
    """The most rows any one node of an ``EXPLAIN ANALYZE`` plan handled: what it returned
    plus what it read and threw away (a filter, a bitmap recheck)."""
    removed = ("Rows Removed by Filter", "Rows Removed by Index Recheck")
    return max(int(n.get("Actual Rows", 0)) + sum(int(n.get(k, 0)) for k in removed) for n in plan_nodes(node))
