"""celery_bgtask: the BackgroundTask contract on top of Celery.

Durable, queryable task records in your SQL database, per-type state callbacks driven by
Celery's signals, database-backed beat schedules and Webiny-style task definitions.
"""

from .component import BackgroundTaskComponent
from .context import TaskContext
from .definitions import DefinitionInfo, TaskDefinition
from .errors import (
    BgTaskError,
    HandlerNotFoundError,
    NamespaceMismatchError,
    TaskValidationError,
)
from .models import (
    BackgroundTask,
    ErrorInfo,
    HandlerOptions,
    QueryResult,
    ScheduledTaskInfo,
    ScheduledTaskTime,
    SortDirection,
    TaskStatus,
)
from .scheduler import TaskSchedulerComponent
from .scheduling.firing import SCHEDULED_TYPE

__all__ = [
    "SCHEDULED_TYPE",
    "BackgroundTask",
    "BackgroundTaskComponent",
    "BgTaskError",
    "DefinitionInfo",
    "ErrorInfo",
    "HandlerNotFoundError",
    "HandlerOptions",
    "NamespaceMismatchError",
    "QueryResult",
    "ScheduledTaskInfo",
    "ScheduledTaskTime",
    "SortDirection",
    "TaskContext",
    "TaskDefinition",
    "TaskSchedulerComponent",
    "TaskStatus",
    "TaskValidationError",
]
