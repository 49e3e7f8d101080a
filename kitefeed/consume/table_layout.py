"""Memory layout of a latest-tick table segment, its hash function and its seqlock reads.

A table segment in /dev/shm has three parts, each 8-byte aligned::

    offset 0                       header: HEADER_SIZE bytes, uint64 words (see the constants below)
    offset HEADER_SIZE             slots: capacity x 2 uint64 words, (sequence, key) per slot
    offset HEADER_SIZE + 16 x cap  records: capacity x TICK_DTYPE (272 bytes each)

Slot ``i`` contains the last record of one instrument in ``records[i]``. Its key word is 0
while the slot is free and ``instrument_token + 1`` once it is taken; a key never
changes after that, so a lookup probes from the token's hash position (linear
probing) until it finds the key or a free slot. Only one writer, the table's owner,
stores into the segment.

Each slot's sequence word is a seqlock. The writer makes it odd, issues a sequentially
consistent fence, stores the record, issues another fence, and makes it even again.
A reader loads the sequence, issues an acquire fence, copies the record, issues an
acquire fence and loads the sequence again. If both loads returned the same even
value, no write overlapped the copy, because a store into the record that the copy
saw is ordered after the odd sequence, which the second load would then see. The
fences come from kitefeed's C atomics, so the order holds on aarch64 as on x86-64.
A new slot's record is written before its key is stored, after a fence, so a reader
that finds the key finds a whole record.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import numpy as np

from ..errors import RingError
from ..parsers import TICK_DTYPE
from ..ringbuf import _atomics

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "find_slot",
    "hash_slot",
    "read_slot",
    "segment_size",
]

MAGIC = int.from_bytes(b"kflatest", "little")
"""First header word of every table segment."""

VERSION = 1
"""Layout version, the second header word; a reader rejects any other."""

DTYPE_CHECK = zlib.crc32(repr(TICK_DTYPE.descr).encode())
"""CRC-32 of the record dtype's description, so a table of another TICK_DTYPE is rejected."""

HEADER_SIZE = 4096

# Header word indices.
W_MAGIC = 0
W_VERSION = 1
W_CAPACITY = 2
W_RECORD_SIZE = 3
W_DTYPE_CHECK = 4
W_OWNER_PID = 5
W_OWNER_START = 6
W_CLOSED = 7  # 1 once the owner stopped following the feed
W_USED = 8  # slots taken
W_UPDATES = 9  # records written since creation
W_DROPPED = 10  # records of new instruments not stored because the table was full
W_CREATED_NS = 11  # creation time, nanoseconds since the Unix epoch
HEADER_WORDS = 12

SEQUENCE = 0
KEY = 1

MAX_LOAD = 0.75
"""Share of the slots that may be taken; beyond it probes grow long, so new instruments are dropped."""

_GOLDEN = 0x9E3779B97F4A7C15
"""Fibonacci hashing multiplier: 2**64 divided by the golden ratio, odd."""

READ_TIMEOUT = 1.0
"""Seconds a reader retries a slot that stays odd before it gives up on a writer that died mid-write."""


def segment_size(capacity: int) -> int:
    """Return the size in bytes of a table with ``capacity`` slots."""
    return HEADER_SIZE + capacity * 16 + capacity * TICK_DTYPE.itemsize


def hash_slot(tokens: np.ndarray[Any, Any], capacity: int) -> np.ndarray[Any, Any]:
    """Return the first slot to probe for each token (uint64 array), for a power-of-two ``capacity``."""
    shift = np.uint64(64 - capacity.bit_length() + 1)
    with np.errstate(over="ignore"):
        # Multiplication wraps modulo 2**64 on purpose; the top bits are the slot.
        return (tokens.astype(np.uint64) * np.uint64(_GOLDEN)) >> shift


def find_slot(slots: np.ndarray[Any, Any], token: int, capacity: int) -> int | None:
    """Return the slot index of ``token``, or None when the table has no record of it.

    ``slots`` is the (capacity, 2) uint64 view of the segment's slot words.
    """
    key = token + 1
    base = slots.ctypes.data
    index = int(hash_slot(np.array([token]), capacity)[0])
    for _ in range(capacity):
        # Acquire pairs with the writer's fence before it stores a new key, so the record is whole.
        found = _atomics.load_acquire_u64(base + index * 16 + KEY * 8)
        if found == key:
            return index
        if found == 0:
            return None
        index = (index + 1) & (capacity - 1)
    return None


def read_slot(slots: np.ndarray[Any, Any], records: np.ndarray[Any, Any], index: int, where: str) -> np.ndarray[Any, Any]:
    """Copy the record of slot ``index`` under its seqlock and return it as a 1-element array.

    Retries while the writer is storing into the slot. Raises :class:`RingError` when
    the sequence stays odd for :data:`READ_TIMEOUT` seconds, which happens only when
    the writer died in the middle of a write.
    """
    address = slots.ctypes.data + index * 16 + SEQUENCE * 8
    deadline = None
    attempts = 0
    while True:
        before = _atomics.load_acquire_u64(address)
        if not before & 1:
            copy = records[index : index + 1].copy()
            if _atomics.fenced_load_u64(address) == before:
                return copy

        # A write takes about a microsecond; the clock is read only after many misses.
        attempts += 1
        if attempts % 1024 == 0:
            now = time.monotonic()
            if deadline is None:
                deadline = now + READ_TIMEOUT
            elif now > deadline:
                raise RingError(
                    f"slot {index} of {where} stayed locked for {READ_TIMEOUT} s: its writer died "
                    "in the middle of a write; restart the table with LatestTable.follow()"
                )
            time.sleep(0)


def read_slots(
    slots: np.ndarray[Any, Any], records: np.ndarray[Any, Any], used: np.ndarray[Any, Any], where: str
) -> np.ndarray[Any, Any]:
    """Copy the records of the slot indices ``used`` (int64 array) under their seqlocks.

    All slots are copied at once with the fences around the whole copy; the slots a
    write overlapped are read again one by one with :func:`read_slot`.
    """
    before = slots[used, SEQUENCE]
    _atomics.fence_acquire()
    copies = records[used]
    _atomics.fence_acquire()
    after = slots[used, SEQUENCE]

    torn = np.flatnonzero((before != after) | (before & np.uint64(1)).astype(bool))
    for position in torn.tolist():
        copies[position] = read_slot(slots, records, int(used[position]), where)[0]
    return copies


def check_header(words: np.ndarray[Any, Any], name: str, size: int) -> int:
    """Validate the header of segment ``name`` of ``size`` bytes and return its capacity."""
    if size < HEADER_SIZE or int(words[W_MAGIC]) != MAGIC:
        raise RingError(f"segment {name!r} is not a kitefeed latest-tick table")
    if int(words[W_VERSION]) != VERSION:
        raise RingError(
            f"latest-tick table {name!r} has layout version {int(words[W_VERSION])}, expected {VERSION}: "
            "use the same kitefeed version in the writer and the readers"
        )
    if int(words[W_RECORD_SIZE]) != TICK_DTYPE.itemsize or int(words[W_DTYPE_CHECK]) != DTYPE_CHECK:
        raise RingError(f"latest-tick table {name!r} contains records of another TICK_DTYPE; use the same kitefeed version for the table and its readers")
    capacity = int(words[W_CAPACITY])
    if capacity < 1 or capacity & (capacity - 1) or segment_size(capacity) != size:
        raise RingError(f"latest-tick table {name!r} is damaged: capacity {capacity} does not match its size {size}")
    return capacity
