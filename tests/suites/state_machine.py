"""The state machine's suite: every transition, every fence and every illegal move.

Each test module that subclasses ``StateMachineSuite`` gives it a ``store`` fixture; the
memory store and every SQL store must pass the same tests.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from celery_bgtask.core import state
from celery_bgtask.core.outcome import Outcome
from celery_bgtask.core.record import TaskRecord
from celery_bgtask.ids import new_id
from celery_bgtask.models import ErrorInfo
from celery_bgtask.store.base import PageQuery, TaskStore

NOW = 1_700_000_000_000
LEASE = 60_000
BOOM = ErrorInfo(name="ValueError", message="boom")


def make(store: TaskStore, **fields: Any) -> TaskRecord:
    """Insert a pending record (with ``fields`` changed) and return it."""
    base = state.create(new_id(), "t", "q", now=NOW, retain_for=0, retry_interval=1000, retries=None,
                        payload='{"a":1}', next_run_at=NOW)
    record = dataclasses.replace(base, **fields)
    store.insert([record])
    return record


def claimed(store: TaskStore, **fields: Any) -> TaskRecord:
    record = make(store, **fields)
    new = store.apply(record.id, state.claim("t", record.attempt, NOW, NOW + LEASE, "w1"))
    assert new is not None
    return new


class StateMachineSuite:
    # -- create and read -----------------------------------------------------------
    def test_a_created_record_reads_back_equal(self, store: TaskStore) -> None:
        record = make(store)
        assert store.get(record.id) == record
        assert record.status == state.PENDING and record.attempt == 0 and record.enqueued_at is None

    def test_an_unknown_id_reads_as_none_and_no_transition_applies(self, store: TaskStore) -> None:
        assert store.get("0" * 32) is None
        assert store.apply("0" * 32, state.claim("t", 0, NOW, NOW + LEASE, "w")) is None
        assert store.delete("0" * 32) is False

    # -- claim ---------------------------------------------------------------------
    def test_claim_makes_a_due_pending_record_processing_under_a_lease(self, store: TaskStore) -> None:
        record = make(store)
        new = store.apply(record.id, state.claim("t", 0, NOW + 5, NOW + LEASE, "w1"))
        assert new is not None
        assert (new.status, new.attempt, new.lease_until, new.worker, new.date_modified) == (
            state.PROCESSING, 1, NOW + LEASE, "w1", NOW + 5)
        assert store.get(record.id) == new

    @pytest.mark.parametrize("why", ["wrong attempt", "wrong type", "not due", "already claimed", "success",
                                     "failed", "cancelled"])
    def test_claim_is_refused_outside_its_state(self, store: TaskStore, why: str) -> None:
        record = {
            "wrong attempt": lambda: make(store, attempt=3),
            "wrong type": lambda: make(store, type="other"),
            "not due": lambda: make(store, next_run_at=NOW + 1),
            "already claimed": lambda: claimed(store),
            "success": lambda: make(store, status=state.SUCCESS),
            "failed": lambda: make(store, status=state.FAILED),
            "cancelled": lambda: make(store, status=state.CANCELLED),
        }[why]()
        attempt = 0 if why in ("wrong attempt", "already claimed") else record.attempt
        assert store.apply(record.id, state.claim("t", attempt, NOW, NOW + LEASE, "w2")) is None
        assert store.get(record.id) == record

    def test_release_wakeup_clears_only_the_records_own_wake_up(self, store: TaskStore) -> None:
        record = make(store, enqueued_at=NOW, attempt=2)
        for task_type, attempt in (("other", 2), ("t", 1), ("t", 3)):  # a stale or crafted wake-up
            assert store.apply(record.id, state.release_wakeup(task_type, attempt)) is None
        assert store.get(record.id) == record
        new = store.apply(record.id, state.release_wakeup("t", 2))
        assert new is not None and new.enqueued_at is None
        assert store.get(record.id) == dataclasses.replace(record, enqueued_at=None)

    def test_a_duplicate_wake_up_claims_once(self, store: TaskStore) -> None:
        record = make(store)
        first = store.apply(record.id, state.claim("t", 0, NOW, NOW + LEASE, "w1"))
        second = store.apply(record.id, state.claim("t", 0, NOW, NOW + LEASE, "w2"))
        assert first is not None and second is None
        assert store.get(record.id) == first

    def test_a_record_between_iterations_is_claimed_again(self, store: TaskStore) -> None:
        record = make(store, status=state.PROCESSING, attempt=2, lease_until=None)
        new = store.apply(record.id, state.claim("t", 2, NOW, NOW + LEASE, "w"))
        assert new is not None and new.attempt == 3 and new.lease_until == NOW + LEASE

    # -- the outcome of a run --------------------------------------------------------
    def test_succeed_records_the_result_and_retention(self, store: TaskStore) -> None:
        record = claimed(store, retain_for=5000, error='{"name":"E","message":"old"}', enqueued_at=NOW)
        t = state.finish(record, Outcome("success", result='{"ok":true}'), NOW + 10)
        assert t.name == "succeed"
        new = store.apply(record.id, t)
        assert new is not None
        assert (new.status, new.result, new.error, new.date_completed, new.date_retain_until) == (
            state.SUCCESS, '{"ok":true}', None, NOW + 10, NOW + 5010)
        assert (new.lease_until, new.next_run_at, new.enqueued_at) == (None, None, None)

    def test_a_record_kept_forever_has_no_retention_date(self, store: TaskStore) -> None:
        record = claimed(store, retain_for=-1)
        new = store.apply(record.id, state.finish(record, Outcome("success"), NOW))
        assert new is not None and new.date_retain_until is None

    def test_a_failure_with_retries_left_is_a_retry(self, store: TaskStore) -> None:
        record = claimed(store, retries_remaining=2, retry_interval=3000)
        t = state.finish(record, Outcome("failed", error=BOOM), NOW + 7, hold_retry=True)
        assert t.name == "retry"
        new = store.apply(record.id, t)
        assert new is not None
        assert (new.status, new.retries_remaining, new.next_run_at, new.enqueued_at, new.lease_until) == (
            state.PENDING, 1, NOW + 3007, NOW + 7, None)
        assert new.error is not None and ErrorInfo.model_validate_json(new.error) == BOOM
        assert new.date_completed is None

    def test_a_failure_whose_text_holds_a_lone_surrogate_is_still_recorded(self, store: TaskStore) -> None:
        record = claimed(store)
        bad = ErrorInfo(name="OSError", message=b"caf\xe9".decode("utf-8", "surrogateescape"))
        new = store.apply(record.id, state.finish(record, Outcome("failed", error=bad), NOW + 1))
        assert new is not None and new.status == state.FAILED and new.error is not None
        assert ErrorInfo.model_validate_json(new.error).message == "caf\ufffd"

    @pytest.mark.parametrize("retries, retryable", [(0, True), (None, True), (3, False)])
    def test_a_failure_without_a_retry_is_final(self, store: TaskStore, retries: int | None,
                                                retryable: bool) -> None:
        record = claimed(store, retries_remaining=retries, retain_for=-1)
        t = state.finish(record, Outcome("failed", error=BOOM, retryable=retryable), NOW + 1)
        assert t.name == "fail"
        new = store.apply(record.id, t)
        assert new is not None
        assert (new.status, new.date_completed, new.retries_remaining) == (state.FAILED, NOW + 1, retries)

    def test_continue_keeps_a_definition_processing_without_a_lease(self, store: TaskStore) -> None:
        record = claimed(store)
        t = state.finish(record, Outcome("continue", payload='{"offset":100}', wait=2.5,
                                         extra={"iterations": 1}), NOW)
        new = store.apply(record.id, t)
        assert new is not None and t.name == "continue"
        assert (new.status, new.lease_until, new.payload, new.next_run_at, new.iterations) == (
            state.PROCESSING, None, '{"offset":100}', NOW + 2500, 1)

    def test_an_aborted_run_is_cancelled(self, store: TaskStore) -> None:
        record = claimed(store, retain_for=100)
        new = store.apply(record.id, state.finish(record, Outcome("cancelled"), NOW))
        assert new is not None
        assert (new.status, new.date_cancelled, new.date_retain_until) == (state.CANCELLED, NOW, NOW + 100)

    @pytest.mark.parametrize("why", ["stale attempt", "lease lost", "removed"])
    def test_a_run_that_lost_its_claim_commits_nothing(self, store: TaskStore, why: str) -> None:
        record = claimed(store)
        if why == "stale attempt":  # recovered and claimed by another worker meanwhile
            changed = store.apply(record.id, state.recover(record, Outcome("failed", error=BOOM), NOW + LEASE + 1))
            assert changed is not None
            store.apply(record.id, state.claim("t", changed.attempt, NOW + LEASE + 2, NOW + 2 * LEASE, "w2"))
        elif why == "lease lost":
            store.apply(record.id, state.cancel(record, NOW, include_running=True))
        else:
            store.delete(record.id)
        before = store.get(record.id)
        assert store.apply(record.id, state.finish(record, Outcome("success"), NOW + 1)) is None
        assert store.get(record.id) == before

    # -- recovery ------------------------------------------------------------------
    def test_recover_applies_only_once_the_lease_ran_out(self, store: TaskStore) -> None:
        record = claimed(store, retries_remaining=1)
        lost = Outcome("failed", error=ErrorInfo(name="WorkerLostError", message="gone"))
        assert store.apply(record.id, state.recover(record, lost, NOW + LEASE)) is None  # not yet expired
        t = state.recover(record, lost, NOW + LEASE + 1)
        assert (t.name, t.settles) == ("recover", "retry")
        new = store.apply(record.id, t)
        assert new is not None and new.status == state.PENDING and new.retries_remaining == 0
        assert store.apply(record.id, state.recover(record, lost, NOW + LEASE + 2)) is None  # once

    def test_recover_is_fenced_by_the_attempt(self, store: TaskStore) -> None:
        record = claimed(store)
        stale = dataclasses.replace(record, attempt=record.attempt - 1)
        assert store.apply(record.id, state.recover(stale, Outcome("failed"), NOW + LEASE + 1)) is None

    # -- cancel and abort ----------------------------------------------------------
    def test_cancel_of_a_pending_task(self, store: TaskStore) -> None:
        record = make(store, retain_for=1000, enqueued_at=NOW)
        new = store.apply(record.id, state.cancel(record, NOW + 3))
        assert new is not None
        assert (new.status, new.date_cancelled, new.date_retain_until, new.next_run_at, new.enqueued_at) == (
            state.CANCELLED, NOW + 3, NOW + 1003, None, None)

    def test_cancel_leaves_a_running_task_unless_told_to_include_it(self, store: TaskStore) -> None:
        record = claimed(store)
        assert store.apply(record.id, state.cancel(record, NOW)) is None
        new = store.apply(record.id, state.cancel(record, NOW, include_running=True))
        assert new is not None and new.status == state.CANCELLED and new.lease_until is None

    @pytest.mark.parametrize("status", [state.SUCCESS, state.FAILED, state.CANCELLED])
    def test_a_finished_task_cannot_be_cancelled(self, store: TaskStore, status: str) -> None:
        record = make(store, status=status)
        assert store.apply(record.id, state.cancel(record, NOW, include_running=True)) is None

    def test_cancel_is_fenced_by_the_attempt_it_read(self, store: TaskStore) -> None:
        record = make(store)
        run = store.apply(record.id, state.claim("t", 0, NOW, NOW + LEASE, "w"))
        assert run is not None
        store.apply(record.id, state.finish(run, Outcome("continue", payload="{}"), NOW))  # waiting again
        assert store.apply(record.id, state.cancel(record, NOW)) is None  # read at attempt 0, now 1

    def test_abort_cancels_a_waiting_task_at_once(self, store: TaskStore) -> None:
        for record in (make(store), make(store, status=state.PROCESSING, attempt=1, lease_until=None)):
            new = store.apply(record.id, state.abort_waiting(record, BOOM, NOW))
            assert new is not None
            assert (new.status, new.abort_requested, new.date_cancelled) == (state.CANCELLED, True, NOW)

    def test_abort_of_a_running_task_only_flags_it(self, store: TaskStore) -> None:
        record = claimed(store)
        assert store.apply(record.id, state.abort_waiting(record, BOOM, NOW)) is None
        new = store.apply(record.id, state.request_abort(record, BOOM))
        assert new is not None and new.status == state.PROCESSING and new.abort_requested
        assert store.abort_requested(record.id) is True

    def test_request_abort_needs_a_running_task(self, store: TaskStore) -> None:
        record = make(store)
        assert store.apply(record.id, state.request_abort(record, BOOM)) is None
        assert store.abort_requested(record.id) is False

    # -- retry() -------------------------------------------------------------------
    def test_run_now_brings_a_waiting_retry_forward(self, store: TaskStore) -> None:
        record = make(store, next_run_at=NOW + 60_000)
        new = store.apply(record.id, state.run_now(NOW))
        assert new is not None and (new.next_run_at, new.enqueued_at) == (NOW, NOW)
        assert store.apply(record.id, state.run_now(NOW)) is None  # already due

    def test_requeue_of_a_retained_failed_task(self, store: TaskStore) -> None:
        record = make(store, status=state.FAILED, date_completed=NOW, date_retain_until=NOW + 10, iterations=7)
        assert store.apply(record.id, state.requeue(NOW + 10)) is None  # retention has passed
        new = store.apply(record.id, state.requeue(NOW + 9))
        assert new is not None
        assert (new.status, new.date_completed, new.date_retain_until, new.next_run_at, new.iterations) == (
            state.PENDING, None, None, NOW + 9, 0)

    @pytest.mark.parametrize("status", [state.PENDING, state.SUCCESS, state.CANCELLED])
    def test_only_a_failed_task_is_requeued(self, store: TaskStore, status: str) -> None:
        record = make(store, status=status)
        assert store.apply(record.id, state.requeue(NOW)) is None

    # -- remove, page, the sweeper's reads ---------------------------------------------
    def test_remove_deletes_and_a_removed_task_counts_as_aborted(self, store: TaskStore) -> None:
        record = make(store)
        assert store.delete(record.id) is True and store.get(record.id) is None
        assert store.abort_requested(record.id) is True

    def test_pages_are_keyset_ordered_by_the_key_then_the_id(self, store: TaskStore) -> None:
        records = [make(store, date_created=NOW + n % 3, type="paged") for n in range(7)]
        want = sorted(records, key=lambda r: (r.date_created, r.id))
        got: list[TaskRecord] = []
        after = None
        while True:
            page = store.page(PageQuery("paged", None, "date_created", False, after, 3))
            got.extend(page)
            if len(page) < 3:
                break
            after = (page[-1].date_created, page[-1].id)
        assert [r.id for r in got] == [r.id for r in want]
        down = store.page(PageQuery("paged", state.PENDING, "date_created", True, None, 10))
        assert [r.id for r in down] == [r.id for r in reversed(want)]

    def test_unfinished_tasks_sort_first_by_date_completed(self, store: TaskStore) -> None:
        done = make(store, type="c", status=state.SUCCESS, date_completed=NOW)
        waiting = make(store, type="c")
        page = store.page(PageQuery("c", None, "date_completed", False, None, 10))
        assert [r.id for r in page] == [waiting.id, done.id]

    def test_due_for_publish_and_take_publish(self, store: TaskStore) -> None:
        unsent = make(store, type="d")
        make(store, type="d", next_run_at=NOW + 1)  # not due
        stale = make(store, type="d", enqueued_at=NOW - 500)
        make(store, type="other")
        assert [d.id for d in store.due_for_publish(NOW, None, ["d"], 10)] == [unsent.id]
        assert [d.id for d in store.due_for_publish(NOW, NOW - 100, ["d"], 10)] == [stale.id]
        assert store.take_publish(unsent.id, 0, None, NOW) is True
        assert store.take_publish(unsent.id, 0, None, NOW) is False  # another sweeper took it
        assert store.due_for_publish(NOW, None, ["d"], 10) == []

    def test_expired_leases(self, store: TaskStore) -> None:
        running = claimed(store)
        assert [r.id for r in store.expired_leases(NOW + LEASE + 1, 10)] == [running.id]

    def test_delete_expired_takes_finished_records_past_retention_oldest_first(self, store: TaskStore) -> None:
        expired = [make(store, status=status, date_retain_until=NOW - n)
                   for n, status in ((30, state.SUCCESS), (20, state.FAILED), (10, state.CANCELLED))]
        kept = [make(store, status=state.SUCCESS, date_retain_until=NOW),  # retention ends now, not before
                make(store, status=state.SUCCESS, date_retain_until=None),  # retain_for=-1: kept forever
                make(store, status=state.PENDING, date_retain_until=NOW - 1)]  # not finished
        assert store.delete_expired(NOW, 2) == 2  # a full batch: there may be more
        assert [store.get(r.id) for r in expired] == [None, None, expired[2]]
        assert store.delete_expired(NOW, 2) == 1  # the last, and the unfinished one, left alone
        assert store.delete_expired(NOW, 2) == 0
        assert [store.get(r.id) for r in kept] == kept

    def test_a_failed_record_requeued_before_its_retention_ended_is_not_deleted(self, store: TaskStore) -> None:
        record = make(store, status=state.FAILED, date_retain_until=NOW - 1)
        assert store.apply(record.id, state.requeue(NOW - 2)) is not None
        assert store.delete_expired(NOW, 10) == 0 and store.get(record.id) is not None

    def test_slots_cap_concurrent_holders(self, store: TaskStore) -> None:
        assert store.acquire_slot("capped", 2, "a", NOW, NOW + LEASE) == 0
        assert store.acquire_slot("capped", 2, "b", NOW, NOW + LEASE) == 1
        assert store.acquire_slot("capped", 2, "c", NOW, NOW + LEASE) is None
        store.release_slot("capped", "a")
        assert store.acquire_slot("capped", 2, "c", NOW, NOW + LEASE) == 0
        assert store.acquire_slot("capped", 2, "d", NOW + LEASE + 1, NOW + 2 * LEASE) is not None  # expired
