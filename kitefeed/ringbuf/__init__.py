"""Single-producer, many-consumer rings of fixed-size numpy records in shared memory.

A :class:`Ring` is one segment in /dev/shm: a header and a power-of-two array of
records of any fixed-size numpy dtype. One :class:`RingWriter` publishes batches;
any number of :class:`RingReader` objects, in any process on the host, read them as
read-only zero-copy views. A :class:`GroupReader` reads several rings as one stream. Readers wait by spinning, by
blocking on a futex that the writer wakes, or by both (see :class:`Wait`). Rings that
share a :class:`Doorbell` let a group reader block on all of them at once.
"""

from .group import GroupReader, GroupStats, open_group_reader
from .layout import USER_SIZE, VERSION
from .doorbell import Doorbell
from .reader import ReaderStats, RingReader, Start, open_reader
from .ring import Ring
from .segment import list_segments, remove_segments
from .stale import find_stale_segments, remove_stale_segments
from .waiting import Wait
from .writer import RingWriter

__all__ = [
    "Doorbell",
    "GroupReader",
    "GroupStats",
    "ReaderStats",
    "Ring",
    "RingReader",
    "RingWriter",
    "Start",
    "USER_SIZE",
    "VERSION",
    "Wait",
    "find_stale_segments",
    "list_segments",
    "open_group_reader",
    "open_reader",
    "remove_segments",
    "remove_stale_segments",
]
