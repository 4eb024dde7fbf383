"""Scheduled-task callbacks by name, so that a worker in another process can run them.

A callback is stored as text: ``function:<module>:<qualname>`` for a module-level
function (or static/class method), ``celery-task:<task name>`` for a Celery task. Only
what imports by name is accepted: a lambda, a closure, a bound method of an instance or a
function defined in ``__main__`` would not exist in the worker's process.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

from celery.app.task import Task

from ..errors import TaskValidationError
from ..reprs import safe_repr

FUNCTION = "function:"
CELERY_TASK = "celery-task:"
_MODULE_FUNCTION = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
FIELD = "task_callback"
_USE_FUNCTION = "use a module-level function"

#: Modules (with their submodules) whose functions are never callbacks: a callback runs with
#: no arguments on every worker, and these can exit, abort, fork, block on a prompt, run a
#: shell or import anything (``os.path`` lives in ``posixpath``/``ntpath``). Not a sandbox:
#: callbacks must be trusted code, and this only stops the obvious ones.
DENIED_MODULES = frozenset({
    "builtins", "_sitebuiltins", "os", "posix", "nt", "posixpath", "ntpath", "genericpath", "sys",
    "subprocess", "_posixsubprocess", "shutil", "importlib", "runpy", "pty", "ctypes", "_ctypes",
    "_thread", "signal", "faulthandler", "code", "pdb",
})


def _refuse_denied(module_name: object, where: str) -> None:
    """``TaskValidationError`` when ``module_name`` is one of ``DENIED_MODULES`` or inside one."""
    if not isinstance(module_name, str):
        return
    root = module_name.partition(".")[0]
    if root in DENIED_MODULES:
        raise TaskValidationError(FIELD, f"{where}: functions of the module {root!r} are refused (builtins, os, sys, "
                                         f"subprocess and the others of DENIED_MODULES); {_USE_FUNCTION} of your own")


def _walk(module_name: str, qualname: str) -> Any:
    """Import ``module_name`` and follow ``qualname``'s attributes; raise on any miss.

    The denylist is checked on the name before anything is imported, then on every module
    and on the function the walk reaches (a name can re-export ``os.system``).
    """
    where = f"{module_name}:{qualname}"
    _refuse_denied(module_name, where)
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
        _refuse_denied(obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None), where)
    return obj


def _is_celery_task(obj: object) -> bool:
    try:
        return isinstance(obj, Task)
    except Exception:  # a lazy task proxy whose app cannot finalise yet
        return False


def callback_ref(callback: object) -> str:
    """The stored reference of ``add_task``'s ``task_callback``; ``TaskValidationError`` if it is not importable."""
    if isinstance(callback, str):
        return _string_ref(callback)
    if _is_celery_task(callback):
        name = getattr(callback, "name", None)
        if not isinstance(name, str) or not name:
            raise TaskValidationError(FIELD, "the Celery task has no name")
        return CELERY_TASK + name
    if not callable(callback):
        raise TaskValidationError(FIELD, f"must be a function, a 'module:function' string or a Celery task, "
                                         f"got {type(callback).__name__}")
    return _function_ref(callback)


def task_ref(field: str, name: object) -> str:
    """The stored reference of a Celery task named in ``beat_schedule``; its module must not be denied.

    The task is sent by name (it need not import in the beat), so only the name is checked:
    a task named under ``os`` or ``subprocess`` is refused as their functions are.
    """
    if not isinstance(name, str) or not name or len(name) > 200 or "\0" in name:
        raise TaskValidationError(field, f"must name a Celery task (a str of 1 to 200 characters), "
                                         f"got {safe_repr(name)}")
    try:
        _refuse_denied(name, name)
    except TaskValidationError as exc:
        raise TaskValidationError(field, exc.rule) from None
    return CELERY_TASK + name


def _string_ref(callback: str) -> str:
    if not _MODULE_FUNCTION.match(callback):
        raise TaskValidationError(FIELD, f"must be 'module:function' (dotted module path), got {safe_repr(callback)}")
    module_name, _, qualname = callback.partition(":")
    try:
        target = _walk(module_name, qualname)
    except ImportError as exc:
        raise TaskValidationError(FIELD, f"cannot import module {safe_repr(module_name)}: {exc}") from None
    except AttributeError:
        raise TaskValidationError(FIELD, f"{safe_repr(module_name)} has no attribute {safe_repr(qualname)}") from None
    if _is_celery_task(target):
        return CELERY_TASK + str(target.name)
    if not callable(target):
        raise TaskValidationError(FIELD, f"{safe_repr(callback)} is not callable")
    return FUNCTION + callback


def _function_ref(callback: Callable[..., Any]) -> str:
    module_name: object = getattr(callback, "__module__", None)
    qualname: object = getattr(callback, "__qualname__", None)
    if not isinstance(module_name, str) or not isinstance(qualname, str):
        raise TaskValidationError(FIELD, f"{safe_repr(callback)} has no module and name to import it by")
    where = f"{module_name}:{qualname}"
    if "<lambda>" in qualname:
        raise TaskValidationError(FIELD, f"a lambda cannot be imported by a worker ({where}); {_USE_FUNCTION}")
    if "<locals>" in qualname:
        raise TaskValidationError(FIELD, f"a closure cannot be imported by a worker ({where}); {_USE_FUNCTION}")
    if module_name == "__main__":
        raise TaskValidationError(
            FIELD, f"{qualname} is defined in __main__, which a worker cannot import; move it to a module"
        )
    try:
        found = _walk(module_name, qualname)
    except (ImportError, AttributeError):
        found = None
    # Bound methods compare equal (not identical) when they wrap the same function and object.
    if found is not callback and not (inspect.ismethod(callback) and found == callback):
        raise TaskValidationError(FIELD, f"{where} does not import by name to this same function")
    return FUNCTION + where


def resolve(ref: str) -> Callable[..., Any] | str:
    """The function of a stored reference, or the name of its Celery task (a ``str``)."""
    if ref.startswith(CELERY_TASK):
        return ref[len(CELERY_TASK):]
    if ref.startswith(FUNCTION):
        module_name, _, qualname = ref[len(FUNCTION):].partition(":")
        fn = _walk(module_name, qualname)
        if _is_celery_task(fn):
            return str(fn.name)
        if not callable(fn):
            raise ValueError(f"{safe_repr(ref)} is no longer callable")
        return typing.cast(Callable[..., Any], fn)
    raise ValueError(f"not a scheduled-callback reference: {safe_repr(ref)}")
