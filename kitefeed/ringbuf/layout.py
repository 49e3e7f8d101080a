"""Header layout of a ring segment, and the record dtype stored in it.

A segment is a header of :func:`header_size` bytes followed by ``capacity`` records.
The header starts with 64-bit native-endian words. The words that the writer changes
on every publish share one cache line, so that a publish moves one header line to the
reader's core, and words that readers write sit on other lines:

======  =============  ==========================================================
byte    word           contents
======  =============  ==========================================================
0       0 .. 7         magic, layout version, header size, capacity, record size,
                       creation time (ns since the Unix epoch), length of the dtype
                       text, length of the user area
64      8 .. 11        ``claimed`` cursor, ``published`` cursor, liveness time
                       (CLOCK_MONOTONIC ns), closed flag
192     26 .. 31       writer pid, writer start time, writer generation, owner pid,
                       owner start time, length of the doorbell name
256     32 .. 34       wait area: futex word, sleeper count, wake-ups issued
512     ..             doorbell name, at most 256 bytes
768     ..             user area, :data:`USER_SIZE` bytes
1280    ..             record dtype as JSON text (``numpy.lib.format`` descr)
======  =============  ==========================================================

Cursors count records published since creation; record ``i`` lives in slot
``i % capacity``. Start times are field 22 of ``/proc/<pid>/stat`` (clock ticks since
boot), so that a process id reused by another process is not taken for the original.
Readers write the sleeper count of the wait area, which is why they map the header
page read-write and the records read-only.
"""

from __future__ import annotations

import json
import mmap
from typing import Any

import numpy as np
from numpy.lib.format import descr_to_dtype, dtype_to_descr

from ..errors import InvalidRequestError, RingLayoutError

__all__ = [
    "CLAIMED",
    "CLOSED",
    "LIVENESS_NS",
    "MAGIC",
    "OWNER_PID",
    "OWNER_START",
    "PUBLISHED",
    "USER_SIZE",
    "VERSION",
    "WAIT_AREA",
    "WRITER_GENERATION",
    "WRITER_PID",
    "WRITER_START",
    "HeaderFields",
    "decode_dtype",
    "encode_dtype",
    "check_header_room",
    "header_size",
    "read_header",
    "write_header",
]

MAGIC = int.from_bytes(b"kfring\r\n", "little")
"""First header word. The CR LF pair catches a file that went through a text conversion."""

VERSION = 3
"""Layout version; a reader rejects any other."""

WORD_COUNT = 64
"""64-bit words at the start of the header, as mapped by the ``words`` array."""

# Word indexes.
_MAGIC, _VERSION, _HEADER_SIZE, _CAPACITY, _RECORD_SIZE, _CREATED_NS, _DTYPE_LENGTH, _USER_LENGTH = range(8)
CLAIMED = 8
PUBLISHED = 9
LIVENESS_NS = 10
CLOSED = 11
WRITER_PID = 26
WRITER_START = 27
WRITER_GENERATION = 28
OWNER_PID = 29
OWNER_START = 30
_DOORBELL_LENGTH = 31
WAIT_AREA = 32
"""Word index of the ring's own wait area, used when the ring has no doorbell."""

DOORBELL_OFFSET = 512
DOORBELL_ROOM = 256
USER_OFFSET = 768
USER_SIZE = 512
"""Bytes of the user area, free for the application (for example a small JSON object)."""

DTYPE_OFFSET = USER_OFFSET + USER_SIZE
MIN_HEADER_SIZE = 4096


def header_size() -> int:
    """Return the header size for new rings: 4096 bytes, or one page if pages are larger.

    Page alignment keeps the records aligned for any dtype.
    """
    return max(MIN_HEADER_SIZE, mmap.PAGESIZE)


def encode_dtype(dtype: np.dtype[Any]) -> bytes:
    """Serialise ``dtype`` to JSON text that :func:`decode_dtype` turns back into an equal dtype.

    Raises InvalidRequestError for a dtype that a ring cannot carry: one that contains Python
    objects, has size 0, or does not survive the round trip (a top-level subarray dtype).
    Field names, offsets, item size and the aligned-struct flag are kept: without the
    flag, ``np.concatenate`` of record views would pack the records and drop padding.
    """
    if dtype.hasobject:
        raise InvalidRequestError(f"invalid record dtype {dtype}: it contains Python objects, which cannot be shared")
    if dtype.itemsize == 0:
        raise InvalidRequestError(f"invalid record dtype {dtype}: its item size is 0")

    descr: Any = dtype_to_descr(dtype)
    if dtype.isalignedstruct:
        descr = {"aligned": True, "descr": descr}
    text = json.dumps(descr, separators=(",", ":")).encode()
    decoded = decode_dtype(text)
    if decoded != dtype or decoded.isalignedstruct != dtype.isalignedstruct:
        raise InvalidRequestError(
            f"invalid record dtype {dtype}: it cannot be stored in a ring header; "
            "use a scalar or structured dtype"
        )
    return text


def decode_dtype(text: bytes) -> np.dtype[Any]:
    """Rebuild the dtype that :func:`encode_dtype` serialised."""
    stored = json.loads(text)
    if not isinstance(stored, dict):
        return descr_to_dtype(_descr_from_json(stored))

    packed = descr_to_dtype(_descr_from_json(stored["descr"]))
    names = list(packed.names or ())
    return np.dtype(
        {
            "names": names,
            "formats": [packed.fields[name][0] for name in names],
            "offsets": [packed.fields[name][1] for name in names],
            "itemsize": packed.itemsize,
            "aligned": bool(stored.get("aligned")),
        }
    )


def _descr_from_json(descr: Any) -> Any:
    """Turn the lists that JSON made of descr tuples back into tuples."""
    if isinstance(descr, str):
        return descr

    fields = []
    for field in descr:
        name, field_descr, *shape = field
        if shape:
            fields.append((name, _descr_from_json(field_descr), tuple(shape[0])))
        else:
            fields.append((name, _descr_from_json(field_descr)))
    return fields


class HeaderFields:
    """The fixed fields of a ring header, as read from or written to a segment."""

    __slots__ = ("header_size", "capacity", "record_size", "created_ns", "dtype", "user", "doorbell")

    def __init__(
        self,
        *,
        header_size: int,
        capacity: int,
        record_size: int,
        created_ns: int,
        dtype: np.dtype[Any],
        user: bytes,
        doorbell: str | None = None,
    ) -> None:
        self.header_size = header_size
        self.capacity = capacity
        self.record_size = record_size
        self.created_ns = created_ns
        self.dtype = dtype
        self.user = user
        # Name of the doorbell segment the ring's writer notifies; None means the
        # ring's own wait area.
        self.doorbell = doorbell

    @property
    def segment_size(self) -> int:
        """Size of the whole segment in bytes."""
        return self.header_size + self.capacity * self.record_size


def check_header_room(fields: HeaderFields, dtype_text: bytes) -> None:
    """Raise InvalidRequestError unless the dtype text and the user data fit in the header."""
    room = fields.header_size - DTYPE_OFFSET
    if len(dtype_text) > room:
        raise InvalidRequestError(
            f"invalid record dtype {fields.dtype}: its description takes {len(dtype_text)} bytes, "
            f"more than the {room} bytes a header has room for; use fewer or shorter field names"
        )
    if fields.doorbell is not None and len(fields.doorbell.encode()) > DOORBELL_ROOM:
        raise InvalidRequestError(
            f"invalid doorbell name {fields.doorbell!r}: expected at most {DOORBELL_ROOM} bytes"
        )
    if len(fields.user) > USER_SIZE:
        raise InvalidRequestError(
            f"invalid user data of {len(fields.user)} bytes: the user area has room for at most {USER_SIZE} bytes"
        )


def header_words(mapping: mmap.mmap) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """Return the header's first :data:`WORD_COUNT` words as a uint64 view of ``mapping``."""
    return np.frombuffer(mapping, dtype=np.uint64, count=WORD_COUNT)


def write_header(mapping: mmap.mmap, fields: HeaderFields, dtype_text: bytes, owner_pid: int, owner_start: int) -> None:
    """Write a new header into a zero-filled, writable segment mapping.

    The owner also counts as the writer until a writer attaches, so the writer fields
    never name a process that has nothing to do with the ring.
    """
    check_header_room(fields, dtype_text)
    set_user(mapping, fields.user)
    mapping[DTYPE_OFFSET : DTYPE_OFFSET + len(dtype_text)] = dtype_text
    doorbell = (fields.doorbell or "").encode()
    mapping[DOORBELL_OFFSET : DOORBELL_OFFSET + len(doorbell)] = doorbell

    words = header_words(mapping)
    words[_VERSION] = VERSION
    words[_HEADER_SIZE] = fields.header_size
    words[_CAPACITY] = fields.capacity
    words[_RECORD_SIZE] = fields.record_size
    words[_CREATED_NS] = fields.created_ns
    words[_DTYPE_LENGTH] = len(dtype_text)
    words[WRITER_PID] = owner_pid
    words[WRITER_START] = owner_start
    words[OWNER_PID] = owner_pid
    words[OWNER_START] = owner_start
    words[_DOORBELL_LENGTH] = len(doorbell)
    words[_MAGIC] = MAGIC
    del words


def read_header(mapping: mmap.mmap, name: str) -> HeaderFields:
    """Read and check the header of the segment ``name``.

    Raises RingLayoutError naming the segment when it is not a ring of this layout
    version, or when its size does not match its header.
    """
    if len(mapping) < MIN_HEADER_SIZE:
        raise RingLayoutError(
            f"segment {name!r} is not a ring: it has {len(mapping)} bytes, fewer than a "
            f"{MIN_HEADER_SIZE}-byte header"
        )

    words = [int(word) for word in header_words(mapping)[:8]]
    if words[_MAGIC] != MAGIC:
        raise RingLayoutError(f"segment {name!r} is not a ring: its magic number is {words[_MAGIC]:#018x}")
    if words[_VERSION] != VERSION:
        raise RingLayoutError(
            f"ring {name!r} has layout version {words[_VERSION]}, but this kitefeed reads "
            f"version {VERSION}: use the same kitefeed version for writer and readers"
        )

    size = words[_HEADER_SIZE]
    dtype_length = words[_DTYPE_LENGTH]
    if size < MIN_HEADER_SIZE or size % MIN_HEADER_SIZE or DTYPE_OFFSET + dtype_length > size:
        raise RingLayoutError(f"ring {name!r} has an invalid header size {size} or dtype length {dtype_length}")
    try:
        dtype = decode_dtype(bytes(mapping[DTYPE_OFFSET : DTYPE_OFFSET + dtype_length]))
    except (ValueError, TypeError) as exc:
        raise RingLayoutError(f"ring {name!r} has an unreadable record dtype: {exc}") from exc

    doorbell_length = int(header_words(mapping)[_DOORBELL_LENGTH])
    if doorbell_length > DOORBELL_ROOM:
        raise RingLayoutError(f"ring {name!r} has an invalid doorbell name length {doorbell_length}")
    doorbell = bytes(mapping[DOORBELL_OFFSET : DOORBELL_OFFSET + doorbell_length]).decode("ascii", "replace")

    fields = HeaderFields(
        header_size=size,
        capacity=words[_CAPACITY],
        record_size=words[_RECORD_SIZE],
        created_ns=words[_CREATED_NS],
        dtype=dtype,
        user=get_user(mapping),
        doorbell=doorbell or None,
    )
    if fields.capacity <= 0 or fields.capacity & (fields.capacity - 1):
        raise RingLayoutError(f"ring {name!r} has capacity {fields.capacity}, which is not a power of two")
    if fields.record_size != dtype.itemsize:
        raise RingLayoutError(
            f"ring {name!r} has record size {fields.record_size}, but its dtype {dtype} has item size {dtype.itemsize}"
        )
    if fields.segment_size != len(mapping):
        raise RingLayoutError(
            f"ring {name!r} has {len(mapping)} bytes, but its header describes {fields.segment_size}"
        )
    return fields


def get_user(mapping: mmap.mmap) -> bytes:
    """Return a copy of the user area's contents."""
    length = min(int(header_words(mapping)[_USER_LENGTH]), USER_SIZE)
    return bytes(mapping[USER_OFFSET : USER_OFFSET + length])


def set_user(mapping: mmap.mmap, data: bytes) -> None:
    """Replace the user area's contents with ``data`` (at most :data:`USER_SIZE` bytes).

    The bytes and their length are two separate stores, so a process reading the area at
    the same moment can see a mix. Set it before readers attach.
    """
    if len(data) > USER_SIZE:
        raise InvalidRequestError(f"invalid user data of {len(data)} bytes: the user area has room for at most {USER_SIZE} bytes")
    mapping[USER_OFFSET : USER_OFFSET + len(data)] = data
    header_words(mapping)[_USER_LENGTH] = len(data)
