"""Several rings read as one stream, for example one ring per API key."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import msgspec
import numpy as np

from ..errors import InvalidRequestError, RingAbandonedError
from . import _atomics
from .reader import ReaderStats, RingReader, Start, _empty_array, open_reader
from .waiting import (
    ASYNC_SLICE_SECONDS,
    DEFAULT_SPIN_US,
    ROTATION_SLICE_SECONDS,
    SLICE_SECONDS,
    Wait,
    resolve_wait,
    timeout_ns,
)

__all__ = ["GroupReader", "GroupStats", "open_group_reader"]


class GroupStats(msgspec.Struct, frozen=True):
    """Counters of a group reader, in records."""

    rings: tuple[ReaderStats, ...]
    """Counters of each ring's reader, in the group's order."""
    read: int
    """Records returned from all rings."""
    lost: int
    """Records lost on all rings."""


class GroupReader:
    """Readers of several rings of one dtype, read as one stream of batches.

    Each read takes the next non-empty batch, trying the rings in turn from the one
    after the ring that supplied the last batch, so a busy ring cannot starve the
    others. Iterating blocks and yields batches until every ring is closed and drained
    or :meth:`close` is called. The group owns its readers and closes them.

    Waiting follows ``wait`` and ``spin_us`` as described in :class:`Wait`. Blocking
    needs one futex for all rings: a single ring, or rings created with the same
    doorbell. Rings with different doorbells (or none) are waited on in rotation, each
    for at most :data:`~kitefeed.ringbuf.waiting.ROTATION_SLICE_SECONDS` (1 ms), so a
    record on a ring other than the one being waited on is seen up to about 1 ms late.

    Reading is meant for one thread. :meth:`close` may be called from any thread: it
    wakes a blocked reading thread, which then ends its read or iteration.
    """

    def __init__(
        self, readers: Iterable[RingReader], *, wait: Wait | str = Wait.SPIN, spin_us: float = DEFAULT_SPIN_US
    ) -> None:
        self._readers: tuple[RingReader, ...] = tuple(readers)
        if not self._readers:
            raise InvalidRequestError("invalid readers: expected at least one RingReader, found none")
        dtype = self._readers[0].dtype
        for reader in self._readers[1:]:
            if reader.dtype != dtype:
                raise InvalidRequestError(
                    f"invalid readers: ring {reader.ring.name!r} has dtype {reader.dtype}, but ring "
                    f"{self._readers[0].ring.name!r} has {dtype}; a group needs one dtype"
                )

        self._dtype = dtype
        self._empty = _empty_array(dtype)
        self._next = 0
        self._last = 0
        self._wait, self._spin_ns = resolve_wait(wait, spin_us)

        # Rings with the same doorbell share one wait area, even though each ring maps
        # it at its own address. One area for the whole group means it can block.
        keys = {reader.ring.doorbell or f"ring:{reader.ring.name}" for reader in self._readers}
        self._shared_area = len(keys) == 1
        self._rotation = 0
        self._liveness_checked_ns = 0

        # The lock keeps close() from releasing a reader in the middle of a read. The
        # event lets a blocking read see close() without taking the lock.
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._closed = False

    def add(self, reader: RingReader) -> None:
        """Read one more ring from now on, for example the ring of an API key added later.

        The group owns the reader from then on. Raises InvalidRequestError when its dtype
        differs from the group's. Safe to call from another thread than the reading one.
        """
        if reader.dtype != self._dtype:
            raise InvalidRequestError(
                f"invalid reader: ring {reader.ring.name!r} has dtype {reader.dtype}, but the group has {self._dtype}"
            )
        with self._lock:
            if self._closed:
                raise InvalidRequestError("invalid reader: the group is closed")
            self._readers = (*self._readers, reader)
            keys = {member.ring.doorbell or f"ring:{member.ring.name}" for member in self._readers}
            self._shared_area = len(keys) == 1

    @property
    def readers(self) -> Sequence[RingReader]:
        """The group's readers, in the order given."""
        return self._readers

    @property
    def dtype(self) -> np.dtype[Any]:
        """Record dtype of every ring in the group."""
        return self._dtype

    @property
    def last_index(self) -> int:
        """Index in :attr:`readers` of the ring that supplied the last batch."""
        return self._last

    @property
    def lost(self) -> int:
        """Records lost on all rings."""
        return sum(reader.lost for reader in self._readers)

    @property
    def drained(self) -> bool:
        """Whether every ring is closed and every reader has returned all its records."""
        with self._lock:
            return self._closed or all(reader.drained for reader in self._readers)

    def read_nowait(self, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Return the next non-empty batch of any ring without waiting, or an empty array.

        The batch is a read-only view as described in :meth:`RingReader.read_nowait`;
        :attr:`last_index` names its ring and :meth:`intact` checks it. After
        :meth:`close`, the result is always empty.
        """
        with self._lock:
            if self._closed:
                return self._empty

            count = len(self._readers)
            for step in range(count):
                index = (self._next + step) % count
                batch = self._readers[index].read_nowait(max_records)
                if len(batch):
                    self._last = index
                    self._next = (index + 1) % count
                    return batch
            return self._empty

    @property
    def wait(self) -> Wait:
        """How :meth:`read` waits for records."""
        return self._wait

    @property
    def spin_us(self) -> float:
        """Microseconds a read spins before it blocks, with :attr:`Wait.SPIN`."""
        return self._spin_ns / 1000

    @property
    def blocks_on_one_futex(self) -> bool:
        """Whether all rings share one wait area, so that blocking wakes on any publish."""
        return self._shared_area

    def read(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for the next non-empty batch of any ring and return it.

        Returns an empty array when ``timeout`` seconds pass first, or at once when every
        ring is closed and drained or the group is closed. Raises RingAbandonedError
        when every ring is drained or abandoned (its owner died without closing it),
        and at least one is abandoned.
        """
        batch = self.read_nowait(max_records)
        if len(batch) or timeout == 0:
            return batch

        deadline = None if timeout is None else time.monotonic_ns() + int(timeout * 1e9)
        while not self._stopped.is_set() and not self.drained:
            left = timeout_ns(deadline, time.monotonic_ns())
            if left == 0:
                self._check_abandoned(force=True)
                break
            self._wait_once(left)
            batch = self.read_nowait(max_records)
            if len(batch):
                return batch
            self._check_abandoned(force=False)
        return self._empty

    async def read_async(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for the next batch without blocking the event loop, and return it as :meth:`read` does.

        The wait runs in the loop's default executor in slices of at most 50 ms; records
        are taken only in the loop's thread, so a cancelled read loses none.
        """
        batch = self.read_nowait(max_records)
        if len(batch) or timeout == 0:
            return batch

        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else time.monotonic_ns() + int(timeout * 1e9)
        slice_ns = int(ASYNC_SLICE_SECONDS * 1e9)
        while not self._stopped.is_set() and not self.drained:
            left = timeout_ns(deadline, time.monotonic_ns())
            if left == 0:
                self._check_abandoned(force=True)
                break
            await loop.run_in_executor(None, self._wait_once, slice_ns if left < 0 else min(slice_ns, left))
            batch = self.read_nowait(max_records)
            if len(batch):
                return batch
            self._check_abandoned(force=False)
        return self._empty

    def __aiter__(self) -> AsyncIterator[np.ndarray[Any, Any]]:
        return self

    async def __anext__(self) -> np.ndarray[Any, Any]:
        batch = await self.read_async()
        if not len(batch):
            raise StopAsyncIteration
        return batch

    def _wait_once(self, left: int) -> None:
        # Waits up to `left` ns (one slice when negative) for news on any ring. The
        # targets hold views of each mapping, which keeps them mapped even if another
        # thread closes the group meanwhile.
        with self._lock:
            if self._closed:
                return
            targets = [
                (reader._words, reader._wait_words, reader._published_address, reader._closed_address, reader._position)
                for reader in self._readers
            ]
            areas = [reader._wait_address for reader in self._readers]

        slice_ns = int(SLICE_SECONDS * 1e9) if left < 0 else min(left, int(SLICE_SECONDS * 1e9))
        start = time.monotonic_ns()
        spin_end = start + (slice_ns if self._wait is Wait.BUSY else min(self._spin_ns, slice_ns))
        while time.monotonic_ns() < spin_end:
            if _has_news(targets) or self._stopped.is_set():
                return
        if self._wait is Wait.BUSY:
            return

        if self._shared_area:
            area = areas[0]
        else:
            area = areas[self._rotation % len(areas)]
            self._rotation += 1
            slice_ns = min(slice_ns, int(ROTATION_SLICE_SECONDS * 1e9))

        expected = _atomics.prepare_sleep(area)
        try:
            if not _has_news(targets) and not self._stopped.is_set():
                _atomics.sleep(area, expected, slice_ns)
        finally:
            _atomics.leave(area)

    def _check_abandoned(self, *, force: bool) -> None:
        now = time.monotonic_ns()
        if not force and now - self._liveness_checked_ns < int(SLICE_SECONDS * 1e9):
            return
        self._liveness_checked_ns = now

        with self._lock:
            if self._closed:
                return
            abandoned = []
            for reader in self._readers:
                ring = reader.ring
                if reader.drained:
                    continue
                if reader.position < ring.published or ring.owner_alive:
                    return
                abandoned.append(ring)
        if abandoned:
            raise RingAbandonedError(abandoned[0].name, abandoned[0].owner_pid)

    def __iter__(self) -> Iterator[np.ndarray[Any, Any]]:
        """Yield batches as they come, until every ring is drained or the group closes."""
        while True:
            batch = self.read()
            if not len(batch):
                return
            yield batch

    def intact(self) -> bool:
        """Return whether the records of the last batch are still unchanged.

        See :meth:`RingReader.intact`.
        """
        with self._lock:
            return self._readers[self._last].intact()

    def stats(self) -> GroupStats:
        """Return the counters of every ring and their totals."""
        with self._lock:
            rings = tuple(reader.stats() for reader in self._readers)
        return GroupStats(
            rings=rings,
            read=sum(ring.read for ring in rings),
            lost=sum(ring.lost for ring in rings),
        )

    def close(self) -> None:
        """Stop reading and close every reader. Safe to call from any thread, and again."""
        self._stopped.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True

            # Wake a read blocked in another thread, which then finds the stopped flag set.
            for reader in self._readers:
                if reader._words is not None:
                    _atomics.notify(reader._wait_address)
            for reader in self._readers:
                reader.close()

    def __enter__(self) -> GroupReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(repr(reader.ring.name) for reader in self._readers)
        return f"<GroupReader [{names}]>"


def open_group_reader(
    names: Iterable[str], start: Start = "oldest", wait: Wait | str = Wait.SPIN, spin_us: float = DEFAULT_SPIN_US
) -> GroupReader:
    """Attach each ring in ``names`` and return a group reader over them.

    ``wait`` and ``spin_us`` are as in :class:`GroupReader`. Raises RingError naming
    the first ring that cannot be attached; the rings attached before it are closed again.
    """
    readers: list[RingReader] = []
    try:
        for name in names:
            readers.append(open_reader(name, start, wait, spin_us))
        return GroupReader(readers, wait=wait, spin_us=spin_us)
    except BaseException:
        for reader in readers:
            reader.close()
        raise


def _has_news(targets: list[tuple[Any, Any, int, int, int]]) -> bool:
    # Whether any ring has a record past the reader's position or is marked closed.
    for _, _, published_address, closed_address, position in targets:
        if _atomics.load_acquire_u64(published_address) > position or _atomics.load_acquire_u64(closed_address):
            return True
    return False
