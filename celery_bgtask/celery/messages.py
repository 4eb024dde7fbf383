"""What a wake-up message may carry, checked before anything touches the database.

``publish`` sends ``celery_bgtask.run(task_id, attempt, task_type=...)`` and
``celery_bgtask.run_many([[task_id, attempt], ...], task_type=...)``. Anyone who can write
to the broker can send other things under those names; such a message is logged and
dropped (the task returns, so Celery acks it): it never runs a handler, never touches a
record, and is never retried.
"""

from __future__ import annotations

import logging
import reprlib
from collections.abc import Callable
from typing import Any

from ..ids import is_bare_id
from ..validation import MAX_TYPE_LENGTH

log = logging.getLogger(__name__)

#: The most tasks one ``run_many`` message may carry (``create_many``'s ``chunk_size`` limit).
MAX_CHUNK = 1000
#: The ``attempt`` column is a 32-bit int, and a claim writes ``attempt + 1``.
MAX_ATTEMPT = 2**31 - 2

#: The only content type our tasks take (kombu's for ``serializer="json"``).
JSON = "application/json"
#: (task id, expected attempt): what one wake-up asks for.
Key = tuple[str, int]

_short = reprlib.Repr()
_short.maxstring = _short.maxother = _short.maxlong = 80
_short.maxlist = _short.maxdict = 4


def key_problem(item: Any) -> str | None:
    """Why ``item`` is not a ``[task_id, attempt]`` pair as ``publish`` sends it, or None if it is."""
    if not isinstance(item, (list, tuple)) or len(item) != 2:
        return f"a [task_id, attempt] pair expected, got {_short.repr(item)}"
    task_id, attempt = item
    if not isinstance(task_id, str) or not is_bare_id(task_id):
        return f"task_id must be a bare id (32 lowercase hex digits), got {_short.repr(task_id)}"
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= MAX_ATTEMPT:
        return f"attempt must be an int from 0 to {MAX_ATTEMPT}, got {_short.repr(attempt)}"
    return None


def _type_problem(kwargs: Any) -> str | None:
    if not isinstance(kwargs, dict) or set(kwargs) - {"task_type"}:
        return f"the only keyword argument is task_type, got {_short.repr(kwargs)}"
    task_type = kwargs.get("task_type")
    if task_type is not None and (not isinstance(task_type, str) or not 0 < len(task_type) <= MAX_TYPE_LENGTH):
        return f"task_type must be a non-empty str up to {MAX_TYPE_LENGTH} long, got {_short.repr(task_type)}"
    return None


def _dropped(name: str, problem: str, args: Any, kwargs: Any) -> None:
    log.warning("%s: malformed message dropped (%s): args=%s kwargs=%s", name, problem, _short.repr(args),
                _short.repr(kwargs))


def parse_run(args: Any, kwargs: Any) -> tuple[Key, str | None] | None:
    """``(key, task_type)`` of a ``celery_bgtask.run`` message, or None (logged) when it is malformed."""
    problem = _type_problem(kwargs)
    if problem is None:
        problem = key_problem(args) if len(args) == 2 else f"2 arguments expected, got {len(args)}"
    if problem is not None:
        _dropped("celery_bgtask.run", problem, args, kwargs)
        return None
    return (args[0], args[1]), kwargs.get("task_type")


def parse_run_many(args: Any, kwargs: Any) -> tuple[list[Key], str | None] | None:
    """The keys and type of a ``celery_bgtask.run_many`` message, or None (logged) when it is malformed.

    A malformed item is logged and left out; the well-formed ones still run.
    """
    problem = _type_problem(kwargs)
    if problem is None and (len(args) != 1 or not isinstance(args[0], list)):
        problem = f"one argument, a list of [task_id, attempt] pairs, expected, got {len(args)} arguments"
    if problem is None and not 0 < len(args[0]) <= MAX_CHUNK:
        problem = f"from 1 to {MAX_CHUNK} pairs expected, got {len(args[0])}"
    if problem is not None:
        _dropped("celery_bgtask.run_many", problem, args, kwargs)
        return None
    keys: list[Key] = []
    for item in args[0]:
        item_problem = key_problem(item)
        if item_problem is None:
            keys.append((item[0], item[1]))
        else:
            log.warning("celery_bgtask.run_many: malformed item dropped (%s)", item_problem)
    return keys, kwargs.get("task_type")


def body_problem(payload: Any) -> str | None:
    """Why a decoded message body is not Celery's ``[args, kwargs, embed]``, or None if it is."""
    if not isinstance(payload, (list, tuple)) or len(payload) != 3:
        return f"a body of [args, kwargs, embed] expected, got {_short.repr(payload)}"
    args, kwargs, embed = payload
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict) or not isinstance(embed, (dict, type(None))):
        return f"a body of [list, dict, dict] expected, got {_short.repr(payload)}"
    return None


def guarded_strategy(task: Any, app: Any, consumer: Any, **options: Any) -> Callable[..., Any]:
    """Our tasks' ``Strategy``: Celery's default one behind a check of the content type and
    of the body's shape, in the consumer, before Celery decodes the body.

    A message that is not JSON is dropped unread, so our tasks are JSON only even in an app
    whose ``accept_content`` allows pickle. Celery's own strategy raises on some bodies (JSON
    ``null`` or a number), which stops the whole worker; such a message is dropped too.
    """
    from celery.worker.strategy import default

    handle = default(task, app, consumer, **options)

    def on_message(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **more: Any) -> Any:
        # Before anything reads the body: a pickle is never loaded, whatever accept_content allows.
        problem: str | None
        if message.content_type != JSON:
            problem = f"content type {message.content_type!r}: these tasks take {JSON} only; it was not read"
        else:
            problem = body_problem(message.payload)
        if problem is None:
            return handle(message, body, ack, reject, callbacks, **more)
        log.warning("%s: malformed message dropped (%s)", task.name, problem)
        ack(log, consumer.connection_errors)
        return None

    return on_message


def chunk_keys(items: Any) -> list[Key]:
    """The well-formed keys of a ``run_many`` message's items, quietly (for a revoke)."""
    if not isinstance(items, list):
        return []
    return [(item[0], item[1]) for item in items if key_problem(item) is None]
