"""Reading a feed's ticks, in the feed's process or in any other process on the host."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import Any

import msgspec
import numpy as np

from ..errors import InvalidRequestError, RingError, RingLayoutError
from ..parsers import TICK_DTYPE
from ..ringbuf import GroupReader, GroupStats, Ring, Start, Wait, open_group_reader
from ..ringbuf.reader import open_reader as open_ring_reader
from ..ringbuf.waiting import DEFAULT_SPIN_US
from .naming import ring_name, validate_feed_name

__all__ = ["FeedReader", "WriterHealth", "open_reader"]

class WriterHealth(msgspec.Struct, frozen=True):
    """The state of one key's writer, as a reader reads it from the ring header."""

    alive: bool  # the process of the ring's last writer is running
    restarts: int  # writers that took over since this reader opened
    liveness_age: float  # seconds since the writer last published or stamped the ring
    feed_alive: bool  # the feed's process (the ring's owner) is running


_DISCOVERY_PERIOD = 0.1
"""Seconds between checks for the ring of an API key added to the feed after the reader opened."""


class FeedReader:
    """Ticks of the API keys of one feed, as one stream of batches.

    Each batch is a read-only numpy array of :data:`kitefeed.TICK_DTYPE` that views the
    shared memory directly (no copy). It stays valid until the writer of its key has
    published ``ring_capacity`` more records. :meth:`intact` returns whether the last
    batch is still whole: check it after using a batch whenever the reader may have
    fallen behind, or copy the batch first. Records the writer overwrote before this
    reader got to them are counted in ``stats().lost``, never returned.

    A reader of all keys also reads keys added to the feed later (``Feed.add_key``),
    from the first record of their ring, within about 0.1 s of their ring's creation.

    Iterating (``for`` or ``async for``) yields batches until the feed stops and every
    ring is drained, or until :meth:`close` is called (from any thread). If the feed's
    process dies without stopping it, reading raises :class:`RingAbandonedError` once
    every record has been read.
    """

    def __init__(
        self, feed_name: str, group: GroupReader, api_keys: list[str], *, follow_new_keys: bool
    ) -> None:
        self.feed_name = feed_name
        self.keys = api_keys
        self._group = group
        self._follow_new_keys = follow_new_keys
        self._next_discovery = time.monotonic() + _DISCOVERY_PERIOD

    def read(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for the next batch and return it; empty on timeout or when the feed has stopped."""
        if not self._follow_new_keys:
            return self._group.read(timeout, max_records)

        # Waits in slices, so that the ring of a key added meanwhile joins the group.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._discover()
            left = _DISCOVERY_PERIOD if deadline is None else min(_DISCOVERY_PERIOD, deadline - time.monotonic())
            batch = self._group.read(max(0.0, left), max_records)
            if len(batch) or self._group.drained or (deadline is not None and time.monotonic() >= deadline):
                return batch

    def read_nowait(self, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Return the next batch without waiting, or an empty array."""
        self._discover()
        return self._group.read_nowait(max_records)

    async def read_async(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for the next batch without blocking the event loop; empty on timeout or when the feed stopped."""
        if not self._follow_new_keys:
            return await self._group.read_async(timeout, max_records)

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._discover()
            left = _DISCOVERY_PERIOD if deadline is None else min(_DISCOVERY_PERIOD, deadline - time.monotonic())
            batch = await self._group.read_async(max(0.0, left), max_records)
            if len(batch) or self._group.drained or (deadline is not None and time.monotonic() >= deadline):
                return batch

    def __iter__(self) -> Iterator[np.ndarray[Any, Any]]:
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

    def _discover(self) -> None:
        if not self._follow_new_keys or time.monotonic() < self._next_discovery:
            return
        self._next_discovery = time.monotonic() + _DISCOVERY_PERIOD
        while True:
            name = ring_name(self.feed_name, len(self.keys))
            try:
                reader = open_ring_reader(name, "oldest", self._group.wait, self._group.spin_us)
            except RingError:
                return
            self.keys.append(_api_key_of(reader.ring))
            self._group.add(reader)

    def intact(self) -> bool:
        """Return whether the last batch returned is still unchanged in shared memory."""
        return self._group.intact()

    @property
    def closed(self) -> bool:
        """Whether the feed has stopped and every record has been read."""
        return self._group.drained

    def stats(self) -> GroupStats:
        """Records read and lost, per key's ring (in the order of :attr:`keys`) and in total."""
        return self._group.stats()

    def lost_per_key(self) -> dict[str, int]:
        """Records lost on each key's ring, by api_key."""
        return {key: reader.lost for key, reader in zip(self.keys, self._group.readers)}

    def writers(self) -> dict[str, WriterHealth]:
        """Return the state of each key's writer (its worker process), by api_key.

        A worker that the feed restarted shows as ``restarts`` > 0; ``liveness_age``
        grows past a second when a worker stops stamping its ring (it stamps every 0.25 s),
        and ``feed_alive`` turns False when the feed's process is gone.
        """
        return {
            key: WriterHealth(
                alive=reader.writer_alive,
                restarts=reader.writer_restarts,
                liveness_age=reader.liveness_age,
                feed_alive=reader.owner_alive,
            )
            for key, reader in zip(self.keys, self._group.readers)
        }

    def close(self) -> None:
        """Release the shared memory; safe from any thread and more than once."""
        self._group.close()

    def __enter__(self) -> "FeedReader":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FeedReader feed={self.feed_name!r} keys={self.keys}>"


def _api_key_of(ring: Ring) -> str:
    try:
        info = json.loads(ring.user.decode() or "{}")
    except ValueError:
        info = {}
    if ring.dtype != TICK_DTYPE or "api_key" not in info:
        raise RingLayoutError(f"segment {ring.name!r} is not a kitefeed tick ring of this version")
    return str(info["api_key"])


def feed_keys(feed_name: str) -> list[str]:
    """Return the api_key of each ring of the running feed ``feed_name``, in key-index order."""
    keys: list[str] = []
    while True:
        try:
            with Ring.attach(ring_name(feed_name, len(keys))) as ring:
                keys.append(_api_key_of(ring))
        except RingLayoutError:
            raise
        except RingError as exc:
            if keys:
                return keys
            raise RingError(
                f"no feed named {feed_name!r} is running on this machine "
                f"(segment {ring_name(feed_name, 0)!r} not found); check the name passed to Feed(name=...)"
            ) from exc


def open_reader(
    feed_name: str,
    *,
    keys: Sequence[str] | None = None,
    start: Start = "oldest",
    wait: Wait | str = Wait.SPIN,
    spin_us: float = DEFAULT_SPIN_US,
) -> FeedReader:
    """Attach to the running feed ``feed_name`` from any process and read its ticks.

    ``keys`` selects the API keys whose rings are read (default: all, as one stream,
    including keys added later). ``start`` is ``"oldest"`` (every record still in the
    rings) or ``"newest"`` (only records published from now on). ``wait`` is how a read
    waits for records: ``"busy"`` polls without a system call (lowest latency, one core
    at 100 %), ``"spin"`` polls for ``spin_us`` microseconds and then blocks until a
    writer wakes it, ``"block"`` blocks at once. Raises :class:`RingError` when no such
    feed runs and :class:`InvalidRequestError` for a key the feed does not have.
    """
    validate_feed_name(feed_name)
    api_keys = feed_keys(feed_name)
    if keys is None:
        selected = api_keys
    else:
        if isinstance(keys, str):
            keys = [keys]
        unknown = [key for key in keys if key not in api_keys]
        if unknown or not keys:
            raise InvalidRequestError(f"invalid keys {list(keys)!r}: feed {feed_name!r} has the keys {api_keys}")
        selected = [key for key in api_keys if key in keys]

    names = [ring_name(feed_name, api_keys.index(key)) for key in selected]
    group = open_group_reader(names, start, wait, spin_us)
    return FeedReader(feed_name, group, list(selected), follow_new_keys=keys is None)
