"""Recording a running feed: read its rings and write every tick to Parquet."""

from __future__ import annotations

import logging
import threading
import time

import msgspec

from ..engine import FeedReader
from .parquet import TickFileWriter

__all__ = ["RecordStats", "record_feed"]

logger = logging.getLogger(__name__)

_READ_TIMEOUT = 0.25
"""Seconds a read waits before the loop checks ``stop`` again."""

_WARNING_PERIOD = 10.0
"""Seconds between warnings about growing losses."""


class RecordStats(msgspec.Struct, frozen=True):
    """Outcome of :func:`record_feed`."""

    ticks: int
    """Ticks written."""
    lost: int
    """Records not written: those the ring's writer overwrote before the reader got to them, and ``torn``."""
    torn: int
    """Records dropped because the ring's writer overwrote them while they were being copied."""
    files: int
    """Parquet files completed."""
    seconds: float
    """Wall-clock duration of the recording."""


def record_feed(reader: FeedReader, writer: TickFileWriter, stop: threading.Event | None = None) -> RecordStats:
    """Write every batch that ``reader`` returns to ``writer`` until the feed stops or ``stop`` is set.

    Returns when the feed has stopped and its rings are drained, when ``stop`` is set
    (within about 0.25 s), or raises KeyboardInterrupt on Ctrl-C. ``writer`` is closed
    in every case, so its last file is completed. Losses are added to ``writer`` as the
    reader's counters grow, so each file's sidecar counts those seen while it was open.
    """
    started = time.monotonic()
    lost_seen = 0
    torn = 0
    lost_logged, next_warning = 0, 0.0
    try:
        while stop is None or not stop.is_set():
            batch = reader.read(timeout=_READ_TIMEOUT)

            if len(batch):
                # The copy is whole only if the ring's writer did not reach these slots
                # meanwhile, which intact() checks. A torn copy is dropped and counted as lost.
                owned = batch.copy()
                if reader.intact():
                    writer.write(owned)
                else:
                    torn += len(owned)
                    writer.add_lost(len(owned))

            lost = reader.stats().lost
            if lost > lost_seen:
                writer.add_lost(lost - lost_seen)
                lost_seen = lost
            if writer.lost > lost_logged and time.monotonic() >= next_warning:
                logger.warning("recorder of feed %r: %d records lost so far", reader.feed_name, writer.lost)
                lost_logged, next_warning = writer.lost, time.monotonic() + _WARNING_PERIOD

            if not len(batch) and reader.closed:
                break
    finally:
        writer.close()

    return RecordStats(
        ticks=writer.rows,
        lost=writer.lost,
        torn=torn,
        files=len(writer.files),
        seconds=time.monotonic() - started,
    )
