"""Replaying recorded ticks into a ring set that readers open like a live feed.

:class:`ReplayFeed` creates exactly what a :class:`~kitefeed.Feed` creates: a doorbell
``kitefeed-<name>-bell`` and one ring ``kitefeed-<name>-<i>`` of :data:`TICK_DTYPE` per
key index, whose user area is the JSON ``{"feed", "key_index", "api_key"}``. So
``kitefeed.open_reader(name)`` reads a replay as it reads a feed, and its iteration ends
when the replay marks the rings closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import msgspec
import numpy as np

from ..engine.naming import doorbell_name, validate_feed_name
from ..engine.segments import claim_feed_name, create_key_ring
from ..errors import FeedStateError, InvalidRequestError, RingError
from ..parsers import TICK_DTYPE
from ..ringbuf import Doorbell, Ring, RingWriter

__all__ = ["ReplayFeed", "ReplayStats", "default_ring_capacity", "replay_schedule"]

logger = logging.getLogger(__name__)

_TOUCH_PERIOD_NS = 250_000_000
"""Maximum sleep between liveness stamps in the rings' headers while waiting for a batch's time."""

MIN_RING_CAPACITY = 1 << 10
MAX_RING_CAPACITY = 1 << 18


class ReplayStats(msgspec.Struct, frozen=True):
    """Outcome of :meth:`ReplayFeed.run`."""

    records: int
    """Records published."""
    batches: int
    """Batches published, one per recorded message (a run of records with one receive time and key)."""
    seconds: float
    """Wall-clock duration of the replay."""


def replay_schedule(
    recv_time_ns: np.ndarray[Any, Any],
    key_index: np.ndarray[Any, Any],
    speed: float | None,
    max_gap_seconds: float | None = None,
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.int64]]]:
    """Split records into batches and return each batch's start index and due time.

    A batch is a run of consecutive records with the same ``recv_time_ns`` (int64 ns)
    and ``key_index``, which is one WebSocket message of the recording. The due time is
    in ns after the replay's start: the receive time after the first batch's, divided by
    ``speed``, or 0 for every batch when ``speed`` is None (as fast as possible). Receive
    times that go back (records of several keys interleaved by a reader) do not move a
    batch earlier than the one before it, and a gap longer than ``max_gap_seconds`` of
    recorded time is shortened to it. Returns two int64 arrays of one element per batch;
    both are empty for no records.
    """
    if speed is not None and not speed > 0:
        raise InvalidRequestError(f"invalid speed {speed!r}: expected a number above 0, or None for as fast as possible")
    times = np.asarray(recv_time_ns, dtype=np.int64)
    keys = np.asarray(key_index)
    if not len(times):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)

    changed = (times[1:] != times[:-1]) | (keys[1:] != keys[:-1])
    starts = np.concatenate(([0], np.flatnonzero(changed) + 1)).astype(np.int64)
    if speed is None:
        return starts, np.zeros(len(starts), dtype=np.int64)

    # The running maximum keeps due times in order; each step is one gap of recorded time.
    latest = np.maximum.accumulate(times[starts])
    gaps = np.diff(latest, prepend=latest[0])
    if max_gap_seconds is not None:
        gaps = np.minimum(gaps, int(max_gap_seconds * 1e9))
    due = np.cumsum(gaps) / speed
    return starts, due.astype(np.int64)


def default_ring_capacity(key_index: np.ndarray[Any, Any]) -> int:
    """Return the smallest power of two that fits the records of the busiest key, within 1,024 and 262,144."""
    largest = int(np.bincount(key_index).max()) if len(key_index) else 0
    return min(MAX_RING_CAPACITY, max(MIN_RING_CAPACITY, 1 << max(largest - 1, 0).bit_length()))


class ReplayFeed:
    """A ring set named like feed ``name``, with one ring per API key in ``api_keys``.

    Creating it creates the segments (after removing those of a dead process of the same
    name), so readers may attach before :meth:`run` publishes anything. :meth:`close`,
    or leaving the ``with`` block, marks the rings closed and removes the segments; it
    runs on an exception or Ctrl-C too. Readers attached by then keep their mappings and
    read what is left. Raises FeedStateError when a running feed or replay of this name
    has segments on this machine.
    """

    def __init__(self, name: str, api_keys: Sequence[str], ring_capacity: int = MAX_RING_CAPACITY) -> None:
        self.name = validate_feed_name(name)
        if not api_keys:
            raise InvalidRequestError("invalid api_keys []: a replay needs at least one key")
        self.api_keys = list(api_keys)
        self._rings: list[Ring] = []
        self._writers: list[RingWriter] = []
        self._doorbell: Doorbell | None = None
        try:
            self._create(ring_capacity)
        except BaseException:
            self.close()
            raise

    def _create(self, ring_capacity: int) -> None:
        claim_feed_name(self.name, "replay")

        self._doorbell = Doorbell.create(doorbell_name(self.name))
        for key_index, api_key in enumerate(self.api_keys):
            ring = create_key_ring(self.name, key_index, api_key, ring_capacity, self._doorbell.name)
            self._rings.append(ring)
            self._writers.append(ring.writer())
        logger.info("replay %r: %d rings of %d records", self.name, len(self._rings), ring_capacity)

    def run(
        self,
        ticks: np.ndarray[Any, Any],
        speed: float | None = None,
        *,
        max_gap_seconds: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ReplayStats:
        """Publish ``ticks`` (1-D :data:`TICK_DTYPE`, in recorded order) on the schedule of :func:`replay_schedule`.

        Each batch goes to the ring of its ``key_index``; records are published as
        recorded, ``recv_time`` included. ``on_progress(records_published, total)`` is
        called about 10 times a second at most. The rings are marked closed at the end,
        so readers' iteration ends once they have read everything.
        """
        if ticks.dtype != TICK_DTYPE or ticks.ndim != 1:
            raise InvalidRequestError(f"invalid ticks: expected a 1-D array of TICK_DTYPE, found {ticks.ndim}-D of {ticks.dtype}")
        keys = ticks["key_index"]
        if len(ticks) and int(keys.max()) >= len(self._writers):
            raise InvalidRequestError(
                f"invalid ticks: key_index {int(keys.max())} has no ring; the replay has {len(self._writers)} keys"
            )
        starts, due = replay_schedule(ticks["recv_time"].view(np.int64), keys, speed, max_gap_seconds)
        ends = np.append(starts[1:], len(ticks))

        started = time.monotonic_ns()
        next_report = 0
        for start, end, due_ns in zip(starts.tolist(), ends.tolist(), due.tolist()):
            self._wait_until(started + due_ns)
            self._writers[int(keys[start])].publish(ticks[start:end])
            if on_progress is not None and time.monotonic_ns() >= next_report:
                on_progress(end, len(ticks))
                next_report = time.monotonic_ns() + 100_000_000

        if on_progress is not None:
            on_progress(len(ticks), len(ticks))
        self.mark_closed()
        seconds = (time.monotonic_ns() - started) / 1e9
        logger.info("replay %r: published %d records in %d batches in %.1f s", self.name, len(ticks), len(starts), seconds)
        return ReplayStats(records=len(ticks), batches=len(starts), seconds=seconds)

    def _wait_until(self, deadline_ns: int) -> None:
        while (left := deadline_ns - time.monotonic_ns()) > 0:
            time.sleep(min(left, _TOUCH_PERIOD_NS) / 1e9)
            for writer in self._writers:
                writer.touch()

    def mark_closed(self) -> None:
        """Tell readers that no more records will come."""
        for ring in self._rings:
            ring.mark_closed()

    def close(self) -> None:
        """Mark the rings closed and remove every segment of the replay. Safe to call more than once."""
        for writer in self._writers:
            writer.close()
        for ring in self._rings:
            try:
                ring.mark_closed()
                ring.close()
                ring.unlink()
            except (OSError, RingError):
                logger.exception("replay %r: removing ring %s failed", self.name, ring.name)
        if self._doorbell is not None:
            try:
                self._doorbell.close()
                self._doorbell.unlink()
            except (OSError, RingError):
                logger.exception("replay %r: removing doorbell %s failed", self.name, self._doorbell.name)
        self._writers, self._rings, self._doorbell = [], [], None

    def __enter__(self) -> ReplayFeed:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ReplayFeed {self.name!r} keys={self.api_keys}>"
