"""Reconnection delays: exponential growth, full jitter, a cap."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays before successive reconnection attempts.

    Attempt ``n`` (from 0) waits a uniformly random time in ``[0, min(cap, base * 2**n)]``
    ("full jitter"), so keys that lost their connections together do not reconnect in
    lockstep. :meth:`reset` after a successful handshake starts again from ``base``.
    """

    def __init__(self, base: float = 0.5, cap: float = 30.0, *, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"invalid backoff base={base} cap={cap}: expected 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self, floor: float = 0.0) -> float:
        """Return the delay in seconds before the next attempt, at least ``floor``."""
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 32))
        self.attempt += 1
        return max(floor, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempt = 0
