"""How a reader waits for records: the strategies and their time limits.

The waiting itself happens in the C extension :mod:`kitefeed.ringbuf._atomics`: a
spin loop that reads the published cursor with acquire ordering, and a futex wait on
the wait area of the ring or of its doorbell. The writer's publish issues FUTEX_WAKE
only when a reader is registered as a sleeper.
"""

from __future__ import annotations

import enum
import math

from ..errors import InvalidRequestError
from . import _atomics

__all__ = ["DEFAULT_SPIN_US", "ROTATION_SLICE_SECONDS", "SLICE_SECONDS", "Wait", "resolve_wait", "timeout_ns"]

DEFAULT_SPIN_US = 50.0
"""Spinning time of :attr:`Wait.SPIN` before it blocks, in microseconds."""

SLICE_SECONDS = _atomics.SLICE_NS / 1e9
"""Longest time one wait stays in C without a timeout, so that Python code regains
control to check signals, the closed flag and the owner's liveness."""

ASYNC_SLICE_SECONDS = 0.05
"""Longest wait of one executor call made by ``read_async``, which bounds how long a
cancelled read keeps its worker thread."""

ROTATION_SLICE_SECONDS = 0.001
"""Wait on one ring's wait area before moving to the next, in a group whose rings have
different doorbells. A record on another ring waits up to about this long to be seen."""


class Wait(enum.Enum):
    """The way a reader waits when no record is available."""

    BUSY = "busy"
    """Spin on the published cursor without system calls: lowest latency, one busy core per reader."""

    SPIN = "spin"
    """Spin for ``spin_us`` microseconds, then block on a futex until the writer wakes the reader."""

    BLOCK = "block"
    """Block on a futex at once: no CPU while idle, a few microseconds more latency."""


def resolve_wait(wait: Wait | str, spin_us: float) -> tuple[Wait, int]:
    """Check a strategy and spinning time and return the strategy and the spin time in ns.

    Raises InvalidRequestError for an unknown strategy or a negative or non-finite ``spin_us``.
    """
    try:
        strategy = Wait(wait)
    except ValueError:
        names = ", ".join(repr(member.value) for member in Wait)
        raise InvalidRequestError(f"invalid wait {wait!r}: expected a Wait member or one of {names}") from None

    if isinstance(spin_us, bool) or not isinstance(spin_us, (int, float)) or not 0 <= spin_us < math.inf:
        raise InvalidRequestError(f"invalid spin_us {spin_us!r}: expected a finite number of microseconds >= 0")

    if strategy is Wait.BLOCK:
        return strategy, 0
    return strategy, int(spin_us * 1000)


def timeout_ns(deadline_ns: int | None, now_ns: int) -> int:
    """Return the time left until ``deadline_ns`` in ns (0 when passed), or -1 without a deadline."""
    if deadline_ns is None:
        return -1
    return max(0, deadline_ns - now_ns)
