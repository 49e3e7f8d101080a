"""Exceptions raised by kitefeed.

Every exception derives from :class:`KitefeedError`::

    KitefeedError
    ├── InvalidRequestError (also ValueError)   the caller passed a bad value
    │   └── CapacityError                       more instruments than the keys can carry
    ├── FeedStateError                          the feed cannot do that in its current state
    │   └── FeedClosedError                     the feed is not running (not started, or stopped)
    ├── WorkerError                             a worker process failed or did not reply
    └── RingError                               a shared-memory ring is missing or incompatible
        ├── RingLayoutError                     a segment is not a ring of this layout version
        └── RingAbandonedError                  a drained ring's owner died without closing it

Damaged data from the network never raises: the decoder skips it and counts it.
"""

from __future__ import annotations

__all__ = [
    "CapacityError",
    "FeedClosedError",
    "FeedStateError",
    "InvalidRequestError",
    "KitefeedError",
    "RingAbandonedError",
    "RingError",
    "RingLayoutError",
    "WorkerError",
]


class KitefeedError(Exception):
    """Base class of every exception that kitefeed raises on purpose."""


class InvalidRequestError(KitefeedError, ValueError):
    """Raised when an argument is invalid. The call changed nothing."""


class CapacityError(InvalidRequestError):
    """Raised when a subscription needs more room than the API keys have.

    Each key carries at most 3 connections of 3,000 instruments. The call changed nothing.
    """


class FeedStateError(KitefeedError):
    """Raised when the feed cannot carry out a call in its current state."""


class FeedClosedError(FeedStateError):
    """Raised on a call that needs a running feed, before start or after stop."""


class WorkerError(KitefeedError):
    """Raised when a worker process exits unexpectedly, rejects a command or does not reply."""


class RingError(KitefeedError):
    """Raised when a shared-memory ring cannot be created, found or attached."""


class RingLayoutError(RingError):
    """Raised when a segment's header does not describe a ring this version can read."""


class RingAbandonedError(RingError):
    """Raised by a blocking read when no record is left and the ring's owner died before closing it.

    No more records can come, because only the owner marks a ring closed. The segment
    stays in /dev/shm until it is removed.
    """

    def __init__(self, ring: str, owner_pid: int) -> None:
        super().__init__(
            f"ring {ring!r} is abandoned: its owner process {owner_pid} is dead and every record "
            "has been read; remove the segment with remove_stale_segments() or `kitefeed cleanup`"
        )
        self.ring = ring
        """Name of the abandoned ring."""
        self.owner_pid = owner_pid
        """Process id of the dead owner."""

    def __reduce__(self) -> tuple[type[RingAbandonedError], tuple[str, int]]:
        # Rebuilds from the attributes, because the constructor does not take the message.
        return type(self), (self.ring, self.owner_pid)
