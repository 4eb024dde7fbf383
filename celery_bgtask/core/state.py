"""The task state machine: each transition a record can make, the state it expects and what
it writes. Stores apply a ``Transition`` as one conditional update (``Expect`` is its WHERE
clause), so a duplicate delivery, a racing worker or a racing sweeper changes nothing.

    pending ──claim──▶ processing ──succeed──▶ success
       ▲  │                │  │  └───fail────▶ failed ──requeue──▶ pending
       │  │                │  └─────cancel (aborted run)──▶ cancelled
       │  └─cancel/abort─▶ cancelled
       └──────retry───────┘ (continue: processing, no lease, until the next claim)

``recover`` applies a lost run's outcome once its lease ran out; ``run_now`` brings a
waiting retry forward; ``request_abort`` flags a running task; ``remove`` deletes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticSerializationError

from ..limits import without_surrogates
from ..models import ErrorInfo, TaskStatus
from .outcome import Outcome
from .record import TaskRecord

PENDING = TaskStatus.PENDING.value
PROCESSING = TaskStatus.PROCESSING.value
SUCCESS = TaskStatus.SUCCESS.value
FAILED = TaskStatus.FAILED.value
CANCELLED = TaskStatus.CANCELLED.value
TERMINAL = (SUCCESS, FAILED, CANCELLED)


@dataclass(frozen=True, slots=True)
class Expect:
    """The state a transition requires; every condition given must hold (None: any)."""

    statuses: tuple[str, ...] | None = None
    #: Waiting to run: pending, or processing between iterations (no lease).
    waiting: bool = False
    attempt: int | None = None
    #: True: a lease is held (a run is in progress); False: none is.
    leased: bool | None = None
    lease_expired_by: int | None = None  # lease_until < this
    due_by: int | None = None  # next_run_at <= this
    due_after: int | None = None  # next_run_at > this
    retained_at: int | None = None  # date_retain_until is None or > this
    #: The record's type: a wake-up names the type whose handler it runs.
    task_type: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    expect: Expect
    values: Mapping[str, Any]
    #: False for the claim: a claim lost to a server crash is harmless (its run's outcome
    #: fails the attempt fence and the task runs again), so it may commit asynchronously.
    durable: bool = True
    #: What a run's end commits (``succeed``, ``retry``, ``fail``, ``continue``, ``cancel``):
    #: ``finish`` is named so, and ``recover`` applies one for a lost run.
    settles: str | None = None


def matches(record: TaskRecord, expect: Expect) -> bool:
    """Whether ``record`` is in the state ``expect`` describes (what a store's WHERE clause says)."""
    if expect.statuses is not None and record.status not in expect.statuses:
        return False
    if expect.waiting and not (record.status == PENDING
                               or (record.status == PROCESSING and record.lease_until is None)):
        return False
    if expect.attempt is not None and record.attempt != expect.attempt:
        return False
    if expect.task_type is not None and record.type != expect.task_type:
        return False
    if expect.leased is not None and (record.lease_until is not None) != expect.leased:
        return False
    if expect.lease_expired_by is not None and not (
            record.lease_until is not None and record.lease_until < expect.lease_expired_by):
        return False
    if expect.due_by is not None and not (record.next_run_at is not None and record.next_run_at <= expect.due_by):
        return False
    if expect.due_after is not None and not (record.next_run_at is not None and record.next_run_at > expect.due_after):
        return False
    return expect.retained_at is None or record.date_retain_until is None or \
        record.date_retain_until > expect.retained_at


def retain_until(retain_for: int, at: int) -> int | None:
    """``date_retain_until`` of a task that finished at ``at``: None when kept forever."""
    return None if retain_for < 0 else at + retain_for


def error_json(error: ErrorInfo | None) -> str | None:
    """The error as JSON text. A lone surrogate (a message or stack built from undecodable
    bytes) becomes U+FFFD: it cannot be stored, and the failure must be."""
    if error is None:
        return None
    try:
        return error.model_dump_json(exclude_none=True, by_alias=True)
    except PydanticSerializationError:
        data = without_surrogates(error.model_dump(mode="json", exclude_none=True, by_alias=True))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# -- the transitions ---------------------------------------------------------------------
def create(task_id: str, task_type: str, queue: str, *, now: int, retain_for: int, retry_interval: int | None,
           retries: int | None, payload: str | None, next_run_at: int) -> TaskRecord:
    """A new ``pending`` record (no wake-up yet: ``enqueued_at`` is stamped when one is sent)."""
    return TaskRecord(
        id=task_id, type=task_type, thread_id=queue, status=PENDING, date_created=now, date_modified=now,
        date_completed=None, date_cancelled=None, date_retain_until=None, retain_for=retain_for,
        retry_interval=retry_interval, retries_remaining=retries, payload=payload, result=None, error=None,
        next_run_at=next_run_at, enqueued_at=None, attempt=0, lease_until=None, worker=None, iterations=0,
        abort_requested=False,
    )


def claim(task_type: str, expected_attempt: int, now: int, lease_until: int, worker: str) -> Transition:
    """Waiting, due, of the type and at the attempt the wake-up names -> processing under a lease.
    The type is checked too: the wake-up's type chose the handler."""
    return Transition(
        "claim",
        Expect(waiting=True, attempt=expected_attempt, due_by=now, task_type=task_type),
        {"status": PROCESSING, "attempt": expected_attempt + 1, "lease_until": lease_until, "date_modified": now,
         "worker": worker},
        durable=False,
    )


def outcome_values(record: TaskRecord, outcome: Outcome, now: int) -> tuple[str, dict[str, Any]]:
    """The transition a run of ``record`` ending in ``outcome`` makes (``succeed``, ``retry``,
    ``fail``, ``continue`` or ``cancel``) and the columns it writes. A failure with retries left
    is a retry: back to pending, due after ``retry_interval``."""
    done: dict[str, Any] = {"lease_until": None, "date_modified": now, "enqueued_at": None, **outcome.extra}
    if outcome.kind == "continue":
        return "continue", {**done, "status": PROCESSING, "payload": outcome.payload,
                            "next_run_at": now + int((outcome.wait or 0) * 1000)}
    retries = record.retries_remaining
    if outcome.kind == "failed" and outcome.retryable and retries is not None and retries > 0:
        return "retry", {**done, "status": PENDING, "retries_remaining": retries - 1,
                         "error": error_json(outcome.error), "next_run_at": now + (record.retry_interval or 0)}
    finished = {**done, "next_run_at": None, "date_retain_until": retain_until(record.retain_for, now)}
    if outcome.kind == "success":
        return "succeed", {**finished, "status": SUCCESS, "result": outcome.result, "error": None,
                           "date_completed": now}
    if outcome.kind == "cancelled":
        return "cancel", {**finished, "status": CANCELLED, "date_cancelled": now}
    return "fail", {**finished, "status": FAILED, "error": error_json(outcome.error), "date_completed": now}


def finish(record: TaskRecord, outcome: Outcome, now: int, *, hold_retry: bool = False) -> Transition:
    """The outcome of a run this process still owns (processing, at its attempt, leased).

    ``hold_retry``: a retry keeps a wake-up stamp until its failure's callbacks have run, so
    no sweeper starts the next attempt before they report this one (``release`` ends it).
    """
    name, values = outcome_values(record, outcome, now)
    if hold_retry and name == "retry":
        values["enqueued_at"] = now
    return Transition(name, Expect(statuses=(PROCESSING,), attempt=record.attempt, leased=True), values,
                      settles=name)


def recover(record: TaskRecord, outcome: Outcome, now: int) -> Transition:
    """A run whose worker died (its lease ran out): the outcome ``on_lost`` chose for it."""
    name, values = outcome_values(record, outcome, now)
    return Transition("recover", Expect(statuses=(PROCESSING,), attempt=record.attempt, lease_expired_by=now),
                      values, settles=name)


def release_wakeup(task_type: str, attempt: int) -> Transition:
    """A wake-up that will not run its task here (no handler, no free slot): marked unsent, so a
    sweeper sends another. Only the record's own wake-up (type and attempt) changes anything."""
    return Transition("release_wakeup", Expect(attempt=attempt, task_type=task_type), {"enqueued_at": None})


def cancel(record: TaskRecord, now: int, *, include_running: bool = False) -> Transition:
    """A pending task (or, ``include_running``, a processing one: a terminated revoke) is cancelled."""
    statuses = (PENDING, PROCESSING) if include_running else (PENDING,)
    return Transition("cancel", Expect(statuses=statuses, attempt=record.attempt), _cancelled(record, now))


def abort_waiting(record: TaskRecord, error: ErrorInfo, now: int) -> Transition:
    """``abort()`` of a task that is not running (pending, or between iterations): cancelled at once."""
    values = {**_cancelled(record, now), "abort_requested": True, "error": error_json(error)}
    return Transition("abort", Expect(statuses=(record.status,), attempt=record.attempt, leased=False), values)


def request_abort(record: TaskRecord, error: ErrorInfo) -> Transition:
    """``abort()`` of a running task: flagged; the run sees it and stops (no status change yet)."""
    return Transition("request_abort", Expect(statuses=(PROCESSING,), attempt=record.attempt, leased=True),
                      {"abort_requested": True, "error": error_json(error)})


def run_now(now: int) -> Transition:
    """``retry()`` of a task waiting for its next attempt: due now, its wake-up about to be sent."""
    return Transition("run_now", Expect(statuses=(PENDING,), due_after=now), {"next_run_at": now, "enqueued_at": now})


def requeue(now: int) -> Transition:
    """``retry()`` of a failed task that is still retained: pending again, due now.

    A definition's run gets a fresh iteration budget, resuming from its last committed input.
    """
    return Transition(
        "requeue",
        Expect(statuses=(FAILED,), retained_at=now),
        {"status": PENDING, "date_modified": now, "date_completed": None, "date_retain_until": None,
         "next_run_at": now, "enqueued_at": now, "lease_until": None, "iterations": 0},
    )


def _cancelled(record: TaskRecord, now: int) -> dict[str, Any]:
    return {"status": CANCELLED, "date_cancelled": now, "date_modified": now,
            "date_retain_until": retain_until(record.retain_for, now), "next_run_at": None, "enqueued_at": None,
            "lease_until": None}
