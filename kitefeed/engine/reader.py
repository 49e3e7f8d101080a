"""Reading a feed's ticks, in the feed's process or in any other process on the host."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import Any

import numpy as np

from ..errors import InvalidRequestError, RingError, RingLayoutError
from ..parsers import TICK_DTYPE
from ..ringbuf import GroupReader, GroupStats, Ring, Start, Wait, open_group_reader
from ..ringbuf.waiting import DEFAULT_SPIN_US
from .naming import ring_name, validate_feed_name

__all__ = ["FeedReader", "open_reader"]


class FeedReader:
    """Ticks of every API key of one feed, as one stream of batches.

    Each batch is a read-only numpy array of :data:`kitefeed.TICK_DTYPE` that views the
    shared memory directly (no copy). It stays valid until the writer of its key has
    published ``ring_capacity`` more records; :meth:`intact` tells whether the last
    batch is still whole, so check it after using a batch whenever the reader may have
    fallen behind, or copy the batch first. Records the writer overwrote before this
    reader got to them are counted in ``stats().lost``, never returned.

    Iterating (``for`` or ``async for``) yields batches until the feed stops and every
    ring is drained, or until :meth:`close` is called (from any thread). If the feed's
    process dies without stopping it, reading raises :class:`RingAbandonedError` once
    every record has been read.
    """

    def __init__(self, feed_name: str, group: GroupReader, api_keys: list[str]) -> None:
        self.feed_name = feed_name
        self.keys = api_keys
        self._group = group

    def read(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for the next batch and return it; empty on timeout or when the feed has stopped."""
        return self._group.read(timeout, max_records)

    def read_nowait(self, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Return the next batch without waiting, or an empty array."""
        return self._group.read_nowait(max_records)

    async def read_async(self, timeout: float | None = None, max_records: int | None = None) -> np.ndarray[Any, Any]:
        """Wait for the next batch without blocking the event loop; empty on timeout or when the feed stopped."""
        return await self._group.read_async(timeout, max_records)

    def __iter__(self) -> Iterator[np.ndarray[Any, Any]]:
        return iter(self._group)

    def __aiter__(self) -> AsyncIterator[np.ndarray[Any, Any]]:
        return aiter(self._group)

    def intact(self) -> bool:
        """Return whether the last batch returned is still unchanged in shared memory."""
        return self._group.intact()

    @property
    def closed(self) -> bool:
        """Whether the feed has stopped and every record has been read."""
        return self._group.drained

    def stats(self) -> GroupStats:
        """Records read and lost, per key's ring (in key-index order) and in total."""
        return self._group.stats()

    def lost_per_key(self) -> dict[str, int]:
        """Records lost on each key's ring, by api_key."""
        return {key: reader.lost for key, reader in zip(self.keys, self._group.readers)}

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


def open_reader(
    feed_name: str,
    *,
    keys: Sequence[str] | None = None,
    start: Start = "oldest",
    wait: Wait | str = Wait.SPIN,
    spin_us: float = DEFAULT_SPIN_US,
) -> FeedReader:
    """Attach to the running feed ``feed_name`` from any process and read its ticks.

    ``keys`` selects the API keys whose rings are read (default: all, as one stream).
    ``start`` is ``"oldest"`` (every record still in the rings) or ``"newest"`` (only
    records published from now on). ``wait`` is how a read waits for records:
    ``"busy"`` polls without a system call (lowest latency, one core at 100 %),
    ``"spin"`` polls for ``spin_us`` microseconds and then blocks until a writer wakes it,
    ``"block"`` blocks at once. Raises :class:`RingError` when no such feed runs and
    :class:`InvalidRequestError` for a key the feed does not have.
    """
    validate_feed_name(feed_name)
    first = ring_name(feed_name, 0)
    try:
        with Ring.attach(first) as ring:
            info = json.loads(ring.user.decode() or "{}")
            dtype = ring.dtype
    except RingError as exc:
        raise RingError(
            f"no feed named {feed_name!r} is running on this machine (segment {first!r} not found); "
            "check the name passed to Feed(name=...)"
        ) from exc
    if dtype != TICK_DTYPE or "api_keys" not in info:
        raise RingLayoutError(f"segment {first!r} is not a kitefeed tick ring of this version")

    api_keys: list[str] = list(info["api_keys"])
    if keys is None:
        selected = api_keys
    else:
        if isinstance(keys, str):
            keys = [keys]
        unknown = [key for key in keys if key not in api_keys]
        if unknown or not keys:
            raise InvalidRequestError(
                f"invalid keys {list(keys)!r}: feed {feed_name!r} has the keys {api_keys}"
            )
        selected = [key for key in api_keys if key in keys]

    names = [ring_name(feed_name, api_keys.index(key)) for key in selected]
    return FeedReader(feed_name, open_group_reader(names, start, wait, spin_us), selected)
