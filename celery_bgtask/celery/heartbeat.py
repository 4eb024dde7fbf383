"""Keeps the leases (and concurrency slots) of the runs in this process alive while they run."""

from __future__ import annotations

import logging
import os
import threading

from ..timeutil import now_ms
from .host import Host

log = logging.getLogger(__name__)


class Heartbeat:
    """One daemon thread per process (restarted after a fork) extends what this process runs."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.running: dict[str, int] = {}
        self.lock = threading.Lock()
        self.pid = 0
        self.stop = threading.Event()

    def add(self, task_id: str, attempt: int) -> None:
        with self.lock:
            self.running[task_id] = attempt
            if self.pid != os.getpid():
                self.pid = os.getpid()
                self.stop = threading.Event()
                threading.Thread(target=self._beat, name="bgtask-lease", daemon=True).start()

    def remove(self, task_id: str) -> None:
        with self.lock:
            self.running.pop(task_id, None)

    def close(self) -> None:
        """Stop this process's heartbeat thread; the next run starts a new one."""
        with self.lock:
            self.stop.set()
            self.pid = 0

    def _beat(self) -> None:
        period = self.host.settings.lease / 3000
        stop = self.stop
        while not stop.wait(period):
            with self.lock:
                owned = dict(self.running)
            if not owned:
                continue
            until = now_ms() + self.host.settings.lease
            try:
                self.host.store.extend_leases(owned, until)
                self.host.store.extend_slots(list(owned), until)
            except Exception:
                log.exception("could not extend leases of %s", sorted(owned))
