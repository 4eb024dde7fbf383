"""New task records from user input: every check runs before anything is written, so bad
input raises ``TaskValidationError`` and leaves the store as it was."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import validation as v
from .config import Settings
from .core import state
from .core.record import TaskRecord
from .definitions import TaskDefinition
from .errors import TaskValidationError
from .ids import new_id
from .timeutil import now_ms


def new_record(
    settings: Settings,
    task_type: str,
    payload: Any,
    *,
    retry_count: object,
    retry_interval: object,
    retain_for: object,
    now: int,
    next_run_at: int | None = None,
) -> TaskRecord:
    """A validated ``pending`` record with a fresh id; the settings fill in what is not given."""
    v.task_type("task_type", task_type)
    retries = v.retry_count("retry_count", retry_count)
    interval = v.retry_interval("retry_interval", retry_interval)
    retain = v.retain_for_ms("retain_for", retain_for)
    text = v.json_text("payload", payload, max_bytes=settings.max_payload_bytes)
    if interval is None and retries is not None:
        interval = settings.default_retry_interval
    return state.create(
        new_id(), task_type, settings.queue, now=now,
        retain_for=settings.default_retain_for if retain is None else retain,
        retry_interval=interval, retries=retries, payload=text,
        next_run_at=now if next_run_at is None else next_run_at,
    )


def build_records(
    settings: Settings,
    definitions: Mapping[str, TaskDefinition],
    task_type: str,
    payloads: Sequence[Any],
    *,
    retry_count: object,
    retry_interval: object,
    retain_for: object,
    itemised: bool = False,
    field: str = "payload",
    next_run_at: int | None = None,
) -> list[TaskRecord]:
    """Validated records for ``payloads``; raises ``TaskValidationError`` before anything is written.

    For the id of a definition registered here, every way in (``create``, ``create_many``,
    ``trigger``) gives the input the same treatment: validated against its ``input_model``,
    the definition's ``retain_for`` when none is given, and ``on_before_trigger`` for each
    input once all are valid. ``itemised`` names a bad item's field ``payloads[i].<field>``;
    ``field`` is what the payload is called.
    """
    v.not_reserved("task_type", task_type)  # the scheduler's firings are built with ``new_record`` alone
    definition = definitions.get(task_type) if isinstance(task_type, str) else None
    if definition is not None and retain_for is None:
        retain_for = definition.retain_for
    now = now_ms()
    records: list[TaskRecord] = []
    values: list[Any] = []
    for index, payload in enumerate(payloads):
        try:
            value = payload if definition is None else definition.parse_input(payload, "payload")
            records.append(new_record(settings, task_type, value, retry_count=retry_count,
                                      retry_interval=retry_interval, retain_for=retain_for, now=now,
                                      next_run_at=next_run_at))
        except TaskValidationError as exc:
            name = field if exc.field == "payload" else exc.field
            raise TaskValidationError(f"payloads[{index}].{name}" if itemised else name, exc.rule) from None
        values.append(value)
    if definition is not None and definition.on_before_trigger is not None:
        for value in values:
            definition.on_before_trigger(value)
    return records
