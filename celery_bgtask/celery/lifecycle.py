"""Per-process handler lifecycle: ``initialise_method``, ``shutdown_method`` and idle shutdown.

One ``ProcessLifecycle`` lives in each process that runs tasks (each prefork child). It
initialises a type before the process first runs it, shuts it down when the process stops,
and, for types with ``idle_shutdown_timeout``, after that many idle ms.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from ..handlers import HandlerSpec, safe_call

log = logging.getLogger(__name__)


@dataclass
class _TypeState:
    spec: HandlerSpec
    running: int = 0
    last_used: float = 0.0


class ProcessLifecycle:
    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._live: dict[str, _TypeState] = {}
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    def _check_pid(self) -> None:
        # After a fork the parent's state is not ours: start empty.
        if self._pid != os.getpid():
            self.__init__()  # type: ignore[misc]

    def enter(self, spec: HandlerSpec) -> None:
        """Before a run: initialise the type in this process if it is not live."""
        self._check_pid()
        with self._lock:
            state = self._live.get(spec.task_type)
            if state is None or state.spec is not spec:
                if state is not None:
                    self._shutdown(state)
                init = spec.lifecycle(spec.options.initialise_method)
                if init is not None:
                    log.info("initialising handler %s in process %s", spec.task_type, os.getpid())
                    init()  # an initialise that raises fails this run (and so the task), by design
                state = self._live[spec.task_type] = _TypeState(spec)
            state.running += 1
        if spec.options.idle_shutdown_timeout is not None:
            self._start_watcher()

    def leave(self, spec: HandlerSpec) -> None:
        with self._lock:
            state = self._live.get(spec.task_type)
            if state is not None:
                state.running -= 1
                state.last_used = time.monotonic()

    def _shutdown(self, state: _TypeState) -> None:
        fn = state.spec.lifecycle(state.spec.options.shutdown_method)
        if fn is not None:
            log.info("shutting down handler %s in process %s", state.spec.task_type, os.getpid())
            safe_call("shutdown_method", fn, task_type=state.spec.task_type)

    def shutdown_all(self) -> None:
        """The process is stopping: shut every live type down once."""
        if self._pid != os.getpid():
            return
        self._stop.set()
        with self._lock:
            states, self._live = list(self._live.values()), {}
        for state in states:
            self._shutdown(state)

    def _start_watcher(self) -> None:
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="bgtask-idle", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            idle: list[_TypeState] = []
            with self._lock:
                for task_type, state in list(self._live.items()):
                    timeout = state.spec.options.idle_shutdown_timeout
                    if timeout is not None and state.running == 0 and now - state.last_used >= timeout / 1000:
                        idle.append(self._live.pop(task_type))
            for state in idle:
                self._shutdown(state)
