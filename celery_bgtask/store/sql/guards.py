"""A transition's ``Expect`` as a SQL WHERE clause, and the statement a transition runs.

A statement is built once per shape of transition (which conditions, which statuses, which
columns it writes) with bind parameters for the values of each call, so the hot ones (the
claim, a run's outcome) are compiled once and go through the fast path.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, bindparam, or_, update

from ...core.state import PENDING, PROCESSING, Expect, Transition
from ..schema import tasks

c = tasks.c
#: The conditions whose value changes from call to call: each is a bind parameter.
_PARAMS = ("attempt", "lease_expired_by", "due_by", "due_after", "retained_at", "task_type")


def shape(transition: Transition) -> Hashable:
    """What the statement of ``transition`` depends on (its cache key)."""
    e = transition.expect
    return (e.statuses, e.waiting, e.leased, tuple(getattr(e, p) is not None for p in _PARAMS),
            tuple(sorted(transition.values)), transition.durable)


def params(task_id: str, transition: Transition) -> dict[str, Any]:
    """The bind parameters of one call of the statement ``statement(transition)`` built."""
    e = transition.expect
    values = {f"e_{p}": v for p in _PARAMS if (v := getattr(e, p)) is not None}
    values.update({f"v_{k}": v for k, v in transition.values.items()})
    values["b_id"] = task_id
    return values


def where(expect: Expect) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if expect.statuses is not None:
        # Equalities, not IN: an IN list is expanded when run, which a precompiled fast-path statement cannot be.
        clauses.append(or_(*(c.status == s for s in expect.statuses)))
    if expect.waiting:
        clauses.append(or_(c.status == PENDING, and_(c.status == PROCESSING, c.lease_until.is_(None))))
    if expect.task_type is not None:
        clauses.append(c.type == bindparam("e_task_type"))
    if expect.attempt is not None:
        clauses.append(c.attempt == bindparam("e_attempt"))
    if expect.leased is not None:
        clauses.append(c.lease_until.is_not(None) if expect.leased else c.lease_until.is_(None))
    if expect.lease_expired_by is not None:
        clauses.append(c.lease_until < bindparam("e_lease_expired_by"))
    if expect.due_by is not None:
        clauses.append(c.next_run_at <= bindparam("e_due_by"))
    if expect.due_after is not None:
        clauses.append(c.next_run_at > bindparam("e_due_after"))
    if expect.retained_at is not None:
        clauses.append(or_(c.date_retain_until.is_(None), c.date_retain_until > bindparam("e_retained_at")))
    return clauses


def statement(transition: Transition) -> Update:
    """``UPDATE bgtask_tasks SET <values> WHERE id = :b_id AND <expect>`` (no RETURNING yet)."""
    return (
        update(tasks)
        .where(c.id == bindparam("b_id"), *where(transition.expect))
        .values({k: bindparam(f"v_{k}") for k in transition.values})
    )
