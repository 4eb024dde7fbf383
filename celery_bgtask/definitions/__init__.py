"""Webiny-style task definitions: ``@bg.definition(...)``, ``bg.trigger()``, ``bg.abort()``.

A definition is a task type whose function takes a ``TaskContext`` and answers with a
response (done, continue, error, aborted); ``iteration`` turns each answer into the outcome
the worker commits. Its hooks (``on_done`` and friends) ride on the type's state-change
callback, a subscriber of the event bus: they fire wherever the terminal state is committed
(the worker, the sweeper, or the process that aborted a waiting task), once, after the commit.
"""

from .model import (
    DEFAULT_MAX_ITERATIONS,
    MAX_ITERATIONS_ERROR,
    DefinitionInfo,
    Hook,
    RunFunction,
    TaskDefinition,
    build_definition,
)
from .registry import Definitions

__all__ = ["DEFAULT_MAX_ITERATIONS", "MAX_ITERATIONS_ERROR", "DefinitionInfo", "Definitions", "Hook", "RunFunction",
           "TaskDefinition", "build_definition"]
