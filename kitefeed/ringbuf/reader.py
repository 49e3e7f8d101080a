"""Readers of a ring: each keeps its own position and reads zero-copy views."""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any, Literal

import msgspec
import numpy as np

from ..errors import InvalidRequestError, RingError
from . import layout
from .ring import Ring
from .waiting import Backoff

__all__ = ["ReaderStats", "RingReader", "open_reader"]

logger = logging.getLogger(__name__)

Start = Literal["oldest", "newest"]
"""Starting point of a new reader: the oldest intact record, or the current published cursor."""


class ReaderStats(msgspec.Struct, frozen=True):
    """Counters of one reader, all in records since the ring was created."""

    position: int
    """Position of the next record this reader will return."""
    published: int
    """Records the writer had published when the statistics were taken."""
    read: int
    """Records returned by this reader."""
    lost: int
    """Records the writer overwrote before this reader got to them."""


class RingReader:
    """A reader of one ring, made by :meth:`Ring.reader` or :func:`open_reader`.

    Each reader has its own position; readers never slow the writer down. A reader that
    falls more than ``capacity`` records behind skips to the oldest intact record and
    counts the skipped records in :attr:`lost`. A reader is not thread-safe.
    """

    def __init__(self, ring: Ring, *, start: Start = "oldest", owns_ring: bool = False) -> None:
        # Private: use Ring.reader() or open_reader().
        if start not in ("oldest", "newest"):
            raise InvalidRequestError(f"invalid start {start!r}: expected 'oldest' or 'newest'")

        self._ring = ring
        self._owns_ring = owns_ring
        self._words: np.ndarray[Any, np.dtype[np.uint64]] | None = ring._words
        self._records: np.ndarray[Any, Any] | None = ring._records_read_only
        self._capacity = ring.capacity
        self._mask = ring.capacity - 1
        self._empty = _empty_array(ring.dtype)

        published = int(self._words[layout.PUBLISHED])
        claimed = int(self._words[layout.CLAIMED])
        self._position = published if start == "newest" else max(0, claimed - self._capacity)
        self._batch_start = self._position
        self._read = 0
        self._lost = 0
        ring._register(self)

    @property
    def ring(self) -> Ring:
        """The ring this reader reads."""
        return self._ring

    @property
    def dtype(self) -> np.dtype[Any]:
        """Record dtype."""
        return self._ring.dtype

    @property
    def position(self) -> int:
        """Position of the next record to return, counted from the ring's creation."""
        return self._position

    @property
    def batch_position(self) -> int:
        """Position of the first record of the last batch returned."""
        return self._batch_start

    @property
    def lost(self) -> int:
        """Records overwritten before this reader got to them."""
        return self._lost

    @property
    def closed(self) -> bool:
        """Whether the ring's owner marked the feed stopped, so no more records will come."""
        return bool(self._live_words()[layout.CLOSED])

    @property
    def drained(self) -> bool:
        """Whether the feed is stopped and this reader has returned every record left."""
        words = self._live_words()

        # Loading the flag before the cursor makes the cursor final when the flag is set.
        closed = bool(words[layout.CLOSED])
        return closed and self._position >= int(words[layout.PUBLISHED])

    def read_nowait(self, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Return the next run of published records without waiting; it may be empty.

        The result is a read-only 1-D view into shared memory of the ring's dtype, with
        at most ``max_records`` records. It stops at the end of the ring's memory, and
        the next call continues from the start. The view contains records from position
        :attr:`batch_position` on and stays valid until the writer claims the slot of
        its first record again, that is ``capacity`` records after that record, which
        depends on how fast the writer goes. Use the records (or copy them), then call
        :meth:`intact` to learn whether that happened meanwhile.
        """
        words, records = self._words, self._records
        if words is None or records is None:
            raise RingError(f"reader of ring {self._ring.name!r} is closed: open a new reader")

        # `published` is loaded before `claimed` and before the records. The writer
        # stores in the opposite order (claimed, records, published), so every record
        # below the loaded `published` is complete.
        published = int(words[layout.PUBLISHED])
        oldest = int(words[layout.CLAIMED]) - self._capacity

        position = self._position
        if position < oldest:
            self._lost += oldest - position
            position = oldest

        available = published - position
        if max_records is not None:
            if max_records <= 0:
                raise InvalidRequestError(f"invalid max_records {max_records}: expected a positive int or None")
            available = min(available, max_records)
        slot = position & self._mask
        count = max(0, min(available, self._capacity - slot))

        self._batch_start = position
        self._position = position + count
        self._read += count
        return records[slot : slot + count]

    def read(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for records and return them as :meth:`read_nowait` does.

        Returns an empty array when ``timeout`` seconds pass first, or at once when the
        feed is stopped and drained. ``timeout=None`` waits as long as the feed runs.
        Waiting polls briefly and then sleeps between polls for at most 0.5 ms.
        """
        batch = self.read_nowait(max_records)
        if len(batch) or timeout == 0:
            return batch

        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff()
        while not self.drained and backoff.pause(deadline):
            batch = self.read_nowait(max_records)
            if len(batch):
                return batch
        return self._empty

    def intact(self) -> bool:
        """Return whether the records of the last batch returned are still unchanged.

        Call it after using the batch's view: False means that the writer has started
        to overwrite some of those records, so the values read may be damaged.
        """
        words = self._live_words()
        return int(words[layout.CLAIMED]) - self._capacity <= self._batch_start

    def stats(self) -> ReaderStats:
        """Return this reader's counters."""
        published = int(self._live_words()[layout.PUBLISHED])
        return ReaderStats(position=self._position, published=published, read=self._read, lost=self._lost)

    def close(self) -> None:
        """Release this reader, and the ring too if :func:`open_reader` attached it.

        Views returned earlier stay readable; see :meth:`Ring.close`. Calling it again
        does nothing.
        """
        if self._words is None:
            return
        self._release()
        if self._owns_ring:
            self._ring.close()

    def _release(self) -> None:
        # Drops the views into the mapping so that Ring.close() can unmap it.
        self._words = None
        self._records = None

    def _live_words(self) -> np.ndarray[Any, np.dtype[np.uint64]]:
        if self._words is None:
            raise RingError(f"reader of ring {self._ring.name!r} is closed: open a new reader")
        return self._words

    def __enter__(self) -> RingReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RingReader {self._ring.name!r} position={self._position} lost={self._lost}>"


def _empty_array(dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    # Not a view of the mapping, so it does not keep the mapping alive.
    empty = np.empty(0, dtype=dtype)
    empty.flags.writeable = False
    return empty


def open_reader(name: str, start: Start = "oldest") -> RingReader:
    """Attach the ring ``name`` read-only and return a reader that closes it on close().

    Raises RingError when the ring does not exist and RingLayoutError when it is not a
    ring of this layout version.
    """
    ring = Ring.attach(name)
    try:
        return RingReader(ring, start=start, owns_ring=True)
    except BaseException:
        ring.close()
        raise
