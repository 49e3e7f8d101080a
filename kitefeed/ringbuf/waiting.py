"""Waiting for new records: spin briefly, then sleep with a capped exponential backoff."""

from __future__ import annotations

import time

__all__ = ["Backoff"]

SPIN_SECONDS = 50e-6
"""Time spent polling without sleeping, which catches a batch that is about to arrive."""

FIRST_SLEEP_SECONDS = 20e-6
MAX_SLEEP_SECONDS = 500e-6
"""Maximum sleep between polls, so a waiting reader notices a batch within about 0.5 ms."""


class Backoff:
    """Pacing for a polling loop: polls without sleeping for a moment, then sleeps that double up to a cap.

    Make one per wait. Linux rounds short sleeps up by the thread's timer slack (50 µs
    by default), so the real sleeps are somewhat longer than the values here.

    NOTE: polling adds up to about 0.5 ms of latency and wakes an idle reader thousands
    of times a second. A futex or eventfd signalled by the writer would remove both.
    """

    __slots__ = ("_spin_until", "_sleep")

    def __init__(self) -> None:
        self._spin_until: float | None = None
        self._sleep = FIRST_SLEEP_SECONDS

    def pause(self, deadline: float | None) -> bool:
        """Wait before the next poll; return False instead when ``deadline`` has passed.

        ``deadline`` is a :func:`time.monotonic` time, or None to wait without limit.
        A sleep never extends past the deadline.
        """
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return False

        if self._spin_until is None:
            self._spin_until = now + SPIN_SECONDS
        if now < self._spin_until:
            return True

        sleep = self._sleep if deadline is None else min(self._sleep, deadline - now)
        time.sleep(sleep)
        self._sleep = min(self._sleep * 2, MAX_SLEEP_SECONDS)
        return True
