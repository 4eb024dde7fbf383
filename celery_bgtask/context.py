"""``TaskContext``: the single argument a task definition's ``run`` receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .models import BackgroundTask
from .responses import TaskResponse
from .runtime import TaskRuntime

I = TypeVar("I")  # noqa: E741 - the input type


@dataclass
class TaskContext(Generic[I]):
    """One iteration of a definition's run.

    ``input`` is the stored input (an ``input_model`` instance when the definition has
    one, else a dict); ``task`` is the record as of the start of this iteration;
    ``iteration`` counts from 1; ``response`` builds the return value; ``runtime``
    answers "was I aborted?" and "am I close to the soft time limit?".
    """

    input: I
    task: BackgroundTask[Any, Any]
    iteration: int
    response: TaskResponse
    runtime: TaskRuntime
