"""Recording ticks and raw messages to files, and replaying them into shared memory.

- :class:`JournalWriter` and :func:`read_journal`: append-only journal files of raw
  WebSocket messages with receive times, which :func:`decode_journal` decodes again.
- :class:`TickFileWriter` and :func:`read_ticks`: Parquet files of decoded ticks,
  rotated by size or time and completed atomically (schema in :mod:`.schema`).
- :func:`record_feed`: writes what a reader of a running feed returns to Parquet.
- :class:`ReplayFeed`: publishes recorded ticks into rings that
  ``kitefeed.open_reader`` reads like a live feed.

Needs pyarrow (the ``record`` extra).
"""

from .journal import JournalMessage, JournalReadStats, JournalWriter, read_journal, read_metadata
from .loading import JournalDecodeStats, Recording, decode_journal, load_recording
from .parquet import TickFileWriter, read_parquet_metadata, read_ticks
from .recorder import RecordStats, record_feed
from .replay import ReplayFeed, ReplayStats, default_ring_capacity, replay_schedule
from .schema import TICK_SCHEMA, table_to_ticks, ticks_to_table

__all__ = [
    "JournalDecodeStats",
    "JournalMessage",
    "JournalReadStats",
    "JournalWriter",
    "RecordStats",
    "Recording",
    "ReplayFeed",
    "ReplayStats",
    "TICK_SCHEMA",
    "TickFileWriter",
    "decode_journal",
    "default_ring_capacity",
    "load_recording",
    "read_journal",
    "read_metadata",
    "read_parquet_metadata",
    "read_ticks",
    "record_feed",
    "replay_schedule",
    "table_to_ticks",
    "ticks_to_table",
]
