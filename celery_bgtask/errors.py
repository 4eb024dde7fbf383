"""The exceptions celery_bgtask raises. Every one of them derives from :class:`BgTaskError`."""

from __future__ import annotations

from .reprs import safe_repr


class BgTaskError(Exception):
    """Root of every error celery_bgtask raises.

    Catch this to handle any failure of the library itself; errors raised by your own
    handlers and hooks are recorded on the task (``task.error``) rather than raised.
    """


class TaskValidationError(BgTaskError, ValueError):
    """An argument, option or payload broke a rule. Nothing was written.

    The message names the field and the rule, e.g. ``retry_count: must be an int >= 0, got '3' (str)``.
    ``field`` holds the field name so callers (an HTTP layer, say) can map it back.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class NamespaceMismatchError(BgTaskError):
    """A task URN belongs to another namespace than ``background-task:celery``.

    Pass the id this component returned, or the bare 32-hex id.
    """

    def __init__(self, task_id: str, namespace: str) -> None:
        self.task_id = task_id
        self.namespace = namespace
        super().__init__(
            f"task_id: namespace {safe_repr(namespace)} is not 'background-task:celery' (got {safe_repr(task_id)})"
        )


class HandlerNotFoundError(BgTaskError):
    """No handler (or task definition) is registered for a task type in this process.

    Register it with ``register_handler`` (or ``@bg.definition``) in a module that both
    the producer and the worker import.
    """

    def __init__(self, task_type: str) -> None:
        self.task_type = task_type
        super().__init__(f"task_type: no handler is registered for {safe_repr(task_type)} in this process")


class HandlerImportError(BgTaskError):
    """A handler's module or function could not be imported by name."""


class StoreUnavailableError(BgTaskError):
    """The database did not answer after the configured retries; nothing was half-written."""


class ScheduleNotFoundError(BgTaskError):
    """A scheduled firing names a schedule that no longer exists, so it runs nothing.

    The callback of a firing is read from its schedule when it runs: a firing committed
    before ``remove_task`` fails with this error instead of running.
    """

    def __init__(self, schedule_id: str) -> None:
        self.schedule_id = schedule_id
        super().__init__(f"scheduleId: there is no schedule {safe_repr(schedule_id)} (removed); nothing was run")
