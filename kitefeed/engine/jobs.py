"""A thread that runs the supervisor's background jobs in order, each when it is due.

Restarting a worker and moving instruments between keys wait for worker replies, which
the monitor thread reads; running these jobs on their own thread keeps the monitor free.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["JobThread"]

logger = logging.getLogger(__name__)


class JobThread(threading.Thread):
    """Runs submitted callables one at a time, in order of due time."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._jobs: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False

    def submit(self, job: Callable[[], None], delay: float = 0.0) -> None:
        """Run ``job`` on this thread after ``delay`` seconds."""
        with self._condition:
            heapq.heappush(self._jobs, (time.monotonic() + delay, next(self._order), job))
            self._condition.notify()

    def stop(self) -> None:
        """Drop pending jobs and end the thread after the running job, if any."""
        with self._condition:
            self._stopped = True
            self._jobs.clear()
            self._condition.notify()
        if self is not threading.current_thread() and self.is_alive():
            self.join(timeout=5.0)

    def run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped:
                    now = time.monotonic()
                    if self._jobs and self._jobs[0][0] <= now:
                        break
                    timeout = self._jobs[0][0] - now if self._jobs else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._jobs)
            try:
                job()
            except Exception:  # noqa: BLE001 - one failed job must not end the others
                logger.exception("background job %s failed", getattr(job, "__name__", job))
