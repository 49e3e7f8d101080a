"""Several rings read as one stream, for example one ring per API key."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import msgspec
import numpy as np

from ..errors import InvalidRequestError
from .reader import ReaderStats, RingReader, Start, _empty_array, open_reader
from .waiting import Backoff

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

    Reading is meant for one thread. :meth:`close` may be called from any thread: it
    ends a blocking read or an iteration in the reading thread within about a
    millisecond.
    """

    def __init__(self, readers: Iterable[RingReader]) -> None:
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

        # The lock keeps close() from releasing a reader in the middle of a read. The
        # event lets a blocking read see close() without taking the lock.
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._closed = False

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

    def read(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for the next non-empty batch of any ring and return it.

        Returns an empty array when ``timeout`` seconds pass first, or at once when every
        ring is closed and drained or the group is closed. Waiting polls briefly and
        then sleeps between polls for at most 0.5 ms.
        """
        batch = self.read_nowait(max_records)
        if len(batch) or timeout == 0:
            return batch

        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff()
        while not self._stopped.is_set() and not self.drained and backoff.pause(deadline):
            batch = self.read_nowait(max_records)
            if len(batch):
                return batch
        return self._empty

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


def open_group_reader(names: Iterable[str], start: Start = "oldest") -> GroupReader:
    """Attach each ring in ``names`` read-only and return a group reader over them.

    Raises RingError naming the first ring that cannot be attached; the rings attached
    before it are closed again.
    """
    readers: list[RingReader] = []
    try:
        for name in names:
            readers.append(open_reader(name, start))
        return GroupReader(readers)
    except BaseException:
        for reader in readers:
            reader.close()
        raise
