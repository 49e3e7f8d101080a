"""Readers of a ring: each keeps its own position, reads zero-copy views and waits for the writer."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Literal

import msgspec
import numpy as np

from ..errors import InvalidRequestError, RingAbandonedError, RingError
from . import _atomics, layout
from .ring import Ring
from .waiting import ASYNC_SLICE_SECONDS, DEFAULT_SPIN_US, SLICE_SECONDS, Wait, resolve_wait, timeout_ns

__all__ = ["ReaderStats", "RingReader", "open_reader"]

logger = logging.getLogger(__name__)

Start = Literal["oldest", "newest"]
"""Starting point of a new reader: the oldest intact record, or the current published cursor."""

_LIVENESS_CHECK_NS = int(SLICE_SECONDS * 1e9)
"""Minimum time between two reads of /proc by one waiting reader."""


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

    Iterating (``for batch in reader`` or ``async for batch in reader``) yields batches
    until the ring is closed and drained.
    """

    def __init__(
        self,
        ring: Ring,
        *,
        start: Start = "oldest",
        wait: Wait | str = Wait.SPIN,
        spin_us: float = DEFAULT_SPIN_US,
        owns_ring: bool = False,
    ) -> None:
        # Private: use Ring.reader() or open_reader().
        if start not in ("oldest", "newest"):
            raise InvalidRequestError(f"invalid start {start!r}: expected 'oldest' or 'newest'")
        self._wait, self._spin_ns = resolve_wait(wait, spin_us)

        self._ring = ring
        self._owns_ring = owns_ring
        self._words: np.ndarray[Any, np.dtype[np.uint64]] | None = ring._words
        self._wait_words: np.ndarray[Any, np.dtype[np.uint64]] | None = ring._wait_words
        self._records: np.ndarray[Any, Any] | None = ring._records_read_only
        self._claimed_address = ring._claimed_address
        self._published_address = ring._published_address
        self._closed_address = ring._closed_address
        self._wait_address = ring._wait_address
        self._capacity = ring.capacity
        self._mask = ring.capacity - 1
        self._empty = _empty_array(ring.dtype)

        published = _atomics.load_acquire_u64(self._published_address)
        claimed = _atomics.load_acquire_u64(self._claimed_address)
        self._position = published if start == "newest" else max(0, claimed - self._capacity)
        self._batch_start = self._position
        self._read = 0
        self._lost = 0
        self._first_generation = max(1, ring.writer_generation)
        self._liveness_checked_ns = 0
        ring._register(self)

    # ----------------------------------------------------------------- properties

    @property
    def ring(self) -> Ring:
        """The ring this reader reads."""
        return self._ring

    @property
    def dtype(self) -> np.dtype[Any]:
        """Record dtype."""
        return self._ring.dtype

    @property
    def wait(self) -> Wait:
        """How :meth:`read` waits for records."""
        return self._wait

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
        self._live_words()

        # Loading the flag before the cursor makes the cursor final when the flag is set.
        closed = _atomics.load_acquire_u64(self._closed_address)
        return closed != 0 and self._position >= _atomics.load_acquire_u64(self._published_address)

    @property
    def writer_alive(self) -> bool:
        """Whether the process of the ring's last writer is running."""
        return self._ring.writer_alive

    @property
    def owner_alive(self) -> bool:
        """Whether the ring's creator is running; when it is not, no one will mark the ring closed."""
        return self._ring.owner_alive

    @property
    def writer_generation(self) -> int:
        """Number of writers taken on the ring since its creation."""
        return self._ring.writer_generation

    @property
    def writer_restarts(self) -> int:
        """Writers taken since the first writer this reader could have seen.

        It stays 0 while the writer that was attached when the reader opened (or the
        first one, if none was) keeps going, and grows by one for each writer after it.
        """
        return max(0, self._ring.writer_generation - self._first_generation)

    @property
    def liveness_age(self) -> float:
        """Seconds since the writer last published or called touch(); infinite before the first."""
        stamp = self._ring.liveness_ns
        if stamp == 0:
            return math.inf
        return max(0, time.monotonic_ns() - stamp) / 1e9

    # ----------------------------------------------------------------- reading

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
        records = self._records
        if records is None:
            raise RingError(f"reader of ring {self._ring.name!r} is closed: open a new reader")

        # `published` is loaded with acquire ordering before `claimed` and before the
        # records. The writer release-stores it after the copy, so every record below
        # the loaded `published` is complete.
        if max_records is not None and max_records <= 0:
            raise InvalidRequestError(f"invalid max_records {max_records}: expected a positive int or None")
        published = _atomics.load_acquire_u64(self._published_address)
        position = self._position
        if published <= position:
            # Nothing new. A writer in the middle of a batch larger than the ring could
            # already be overwriting this position; the next call that finds records
            # counts that loss.
            self._batch_start = position
            return self._empty
        oldest = _atomics.load_acquire_u64(self._claimed_address) - self._capacity

        if position < oldest:
            self._lost += oldest - position
            position = oldest

        available = published - position
        if max_records is not None:
            available = min(available, max_records)
        slot = position & self._mask
        count = max(0, min(available, self._capacity - slot))

        self._batch_start = position
        self._position = position + count
        self._read += count
        return records[slot : slot + count]

    def wait_for_records(self, timeout: float | None = None) -> bool:
        """Wait with the reader's strategy until a record is available, without taking it.

        Returns True when the next :meth:`read_nowait` will return records, False when
        ``timeout`` seconds passed first or the ring is closed and drained.
        """
        deadline = None if timeout is None else time.monotonic_ns() + int(timeout * 1e9)
        while True:
            if _atomics.load_acquire_u64(self._published_address) > self._position:
                return True
            left = timeout_ns(deadline, time.monotonic_ns())
            if left == 0 or self.drained:
                return False
            _wait_once(*self._wait_arguments(), left)

    def read(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for records with the reader's strategy and return them as :meth:`read_nowait` does.

        Returns an empty array when ``timeout`` seconds pass first, or at once when the
        feed is stopped and drained. ``timeout=None`` waits as long as the feed runs.
        Raises RingAbandonedError instead of waiting when no record is left and the
        ring's owner died without marking it closed. A dead writer with a live owner is
        no error: the reader keeps waiting for the next writer.
        """
        batch = self.read_nowait(max_records)
        if len(batch) or timeout == 0:
            return batch

        deadline = None if timeout is None else time.monotonic_ns() + int(timeout * 1e9)
        while not self.drained:
            left = timeout_ns(deadline, time.monotonic_ns())
            if left == 0:
                self._check_abandoned(force=True)
                break
            _wait_once(*self._wait_arguments(), left)
            batch = self.read_nowait(max_records)
            if len(batch):
                return batch
            self._check_abandoned(force=False)
        return self._empty

    async def read_async(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for records without blocking the event loop, and return them as :meth:`read` does.

        The wait runs in the loop's default executor in slices of at most 50 ms, so a
        cancelled read returns its worker thread within that time.
        """
        batch = self.read_nowait(max_records)
        if len(batch) or timeout == 0:
            return batch

        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else time.monotonic_ns() + int(timeout * 1e9)
        slice_ns = int(ASYNC_SLICE_SECONDS * 1e9)
        while not self.drained:
            left = timeout_ns(deadline, time.monotonic_ns())
            if left == 0:
                self._check_abandoned(force=True)
                break
            wait_ns = slice_ns if left < 0 else min(slice_ns, left)
            await loop.run_in_executor(None, _wait_once, *self._wait_arguments(), wait_ns)
            batch = self.read_nowait(max_records)
            if len(batch):
                return batch
            self._check_abandoned(force=False)
        return self._empty

    def __iter__(self) -> Iterator[np.ndarray[Any, Any]]:
        """Yield batches as :meth:`read` returns them, until the ring is closed and drained."""
        while True:
            batch = self.read()
            if not len(batch):
                return
            yield batch

    def __aiter__(self) -> AsyncIterator[np.ndarray[Any, Any]]:
        return self

    async def __anext__(self) -> np.ndarray[Any, Any]:
        batch = await self.read_async()
        if not len(batch):
            raise StopAsyncIteration
        return batch

    def intact(self) -> bool:
        """Return whether the records of the last batch returned are still unchanged.

        Call it after using the batch's view: False means that the writer has started
        to overwrite some of those records, so the values read may be damaged.
        """
        self._live_words()

        # The acquire fence orders the loads of the records before this load of
        # `claimed`, like the re-check of a seqlock.
        return _atomics.fenced_load_u64(self._claimed_address) - self._capacity <= self._batch_start

    def stats(self) -> ReaderStats:
        """Return this reader's counters."""
        published = int(self._live_words()[layout.PUBLISHED])
        return ReaderStats(position=self._position, published=published, read=self._read, lost=self._lost)

    # ----------------------------------------------------------------- life cycle

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
        self._wait_words = None
        self._records = None

    def _live_words(self) -> np.ndarray[Any, np.dtype[np.uint64]]:
        if self._words is None:
            raise RingError(f"reader of ring {self._ring.name!r} is closed: open a new reader")
        return self._words

    def _wait_arguments(self) -> tuple[Any, ...]:
        # The views travel with the addresses, which keeps the mapping alive during the
        # wait even if another thread closes the reader.
        return (
            self._live_words(),
            self._wait_words,
            self._wait,
            self._published_address,
            self._closed_address,
            self._position,
            self._wait_address,
            self._spin_ns,
        )

    def _check_abandoned(self, *, force: bool) -> None:
        # Reading /proc costs microseconds, so a waiting reader reads it at most once per
        # slice, plus once before a read returns empty because its timeout passed.
        now = time.monotonic_ns()
        if not force and now - self._liveness_checked_ns < _LIVENESS_CHECK_NS:
            return
        self._liveness_checked_ns = now

        ring = self._ring
        if ring.closed or self._position < ring.published or ring.owner_alive:
            return
        raise RingAbandonedError(ring.name, ring.owner_pid)

    def __enter__(self) -> RingReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RingReader {self._ring.name!r} position={self._position} lost={self._lost}>"


def _wait_once(
    words: Any,
    wait_words: Any,
    wait: Wait,
    published_address: int,
    closed_address: int,
    position: int,
    wait_address: int,
    spin_ns: int,
    timeout: int,
) -> None:
    # `words` and `wait_words` are unused but referenced: they keep the mapping alive.
    if wait is Wait.BUSY:
        _atomics.busy_poll(published_address, closed_address, position, timeout)
    else:
        _atomics.wait(published_address, closed_address, position, wait_address, spin_ns, timeout)


def _empty_array(dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    # Not a view of the mapping, so it does not keep the mapping alive.
    empty = np.empty(0, dtype=dtype)
    empty.flags.writeable = False
    return empty


def open_reader(
    name: str, start: Start = "oldest", wait: Wait | str = Wait.SPIN, spin_us: float = DEFAULT_SPIN_US
) -> RingReader:
    """Attach the ring ``name`` and return a reader that closes it on close().

    ``wait`` and ``spin_us`` are as in :meth:`Ring.reader`. Raises RingError when the
    ring does not exist and RingLayoutError when it is not a ring of this layout version.
    """
    ring = Ring.attach(name)
    try:
        return RingReader(ring, start=start, wait=wait, spin_us=spin_us, owns_ring=True)
    except BaseException:
        ring.close()
        raise
