"""Decoder of Kite binary messages into :data:`TICK_DTYPE` arrays.

A binary message is a 2-byte packet count followed by packets, each prefixed with its
2-byte length (all big-endian). One C loop (``_decode.c``) walks the length prefixes
and writes each packet's record, so no Python code runs per packet. The plain Python
twin in ``reference.py`` follows the same rules, and the tests check the two agree.

Damaged input never raises. A packet that cannot be decoded is skipped and counted in
:class:`DecodeStats`; the good packets of the same message are still returned.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import numpy as np

from ..errors import InvalidRequestError
from . import _decode
from .dtype import TICK_DTYPE
from .layout import KIND_LENGTH

__all__ = ["DecodeStats", "Decoder"]

_MIN_PACKET_BYTES = 2 + min(KIND_LENGTH.values())
"""Bytes of the smallest packet that yields a tick: a length prefix and an LTP body."""

_VOID = np.dtype((np.void, TICK_DTYPE.itemsize))
"""Opaque records, which numpy copies with memcpy, padding included."""

# The C decoder writes records at fixed offsets; a change to TICK_DTYPE must reach it.
_LAYOUT = {name: TICK_DTYPE.fields[name][1] for name in TICK_DTYPE.names}
if _decode.LAYOUT != _LAYOUT or _decode.RECORD_SIZE != TICK_DTYPE.itemsize:
    raise ImportError("kitefeed.parsers._decode was built for another TICK_DTYPE layout; rebuild it with `pip install -e .`")


class DecodeStats(msgspec.Struct, frozen=True):
    """Cumulative counters of one :class:`Decoder`.

    A skipped packet is counted in exactly one of the four error counters.
    """

    messages: int = 0
    """Binary messages decoded, heartbeats included."""
    heartbeats: int = 0
    """Messages shorter than 2 bytes."""
    bytes: int = 0
    """Total length of all messages."""
    packets: int = 0
    """Packets whose length prefix was present in the message."""
    ticks: int = 0
    """Ticks returned."""
    short_packets: int = 0
    """Packets with a declared or present length below 4, the size of the token; skipped."""
    truncated_packets: int = 0
    """Packets with fewer bytes present than their length prefix declares; skipped."""
    unknown_length_packets: int = 0
    """Complete packets whose length is not 8, 28, 32, 44 or 184; skipped."""
    missing_packets: int = 0
    """Packets that the count declares but whose length prefix lies beyond the message."""

    @property
    def errors(self) -> int:
        """Total of the four error counters."""
        return self.short_packets + self.truncated_packets + self.unknown_length_packets + self.missing_packets



class Decoder:
    """Decode Kite binary messages into arrays of :data:`TICK_DTYPE`.

    Build one decoder per connection and feed it every binary message. ``key_index``
    (0-65535) and ``connection_index`` (0-255) are written into every tick. The decoder
    keeps only counters, so it is cheap, but it is not thread-safe.
    """

    def __init__(self, key_index: int = 0, connection_index: int = 0) -> None:
        if not 0 <= key_index <= 0xFFFF:
            raise InvalidRequestError(f"invalid key_index {key_index!r}: expected an integer from 0 to 65535")
        if not 0 <= connection_index <= 0xFF:
            raise InvalidRequestError(
                f"invalid connection_index {connection_index!r}: expected an integer from 0 to 255"
            )
        self.key_index = key_index
        self.connection_index = connection_index
        self._counts = dict.fromkeys(DecodeStats.__struct_fields__, 0)
        self._accepted_dtype: np.dtype[Any] = TICK_DTYPE

    def stats(self) -> DecodeStats:
        """Return a copy of the cumulative counters."""
        return DecodeStats(**self._counts)

    @staticmethod
    def max_ticks(message: bytes | bytearray | memoryview) -> int:
        """Return the most ticks that :meth:`decode_into` can write for ``message``.

        That is the packet count in the header, capped by the packets of the smallest
        kind (10 bytes with the prefix) that fit in the message; 0 for a heartbeat.
        """
        if isinstance(message, memoryview):
            message = message.cast("B")
        size = len(message)
        if size < 2:
            return 0
        return min((message[0] << 8) | message[1], (size - 2) // _MIN_PACKET_BYTES)

    def decode(self, message: bytes | bytearray | memoryview, recv_time_ns: int | None = None) -> np.ndarray:
        """Decode one binary message into ticks in wire order.

        Returns a new, writable 1-D array of :data:`TICK_DTYPE` that shares no memory with
        ``message``. The array is empty for a heartbeat (fewer than 2 bytes) or a message
        without packets. ``recv_time_ns`` is written into every tick's ``recv_time``, in
        nanoseconds since the Unix epoch (UTC), and defaults to now. Bytes after the
        declared packets are ignored.
        """
        out = np.empty(self.max_ticks(message), dtype=TICK_DTYPE)
        written = self.decode_into(message, out, recv_time_ns)
        if written == len(out):
            return out
        # A damaged message leaves part of `out` unused; a copy frees that memory. The copy
        # goes through opaque records because numpy copies structured records field by
        # field and skips their padding.
        return out[:written].view(_VOID).copy().view(TICK_DTYPE)

    def decode_into(
        self, message: bytes | bytearray | memoryview, out: np.ndarray, recv_time_ns: int | None = None
    ) -> int:
        """Decode one binary message into the first records of ``out`` and return how many it wrote.

        ``out`` is a writable 1-D array of :data:`TICK_DTYPE`, for example a view of ring
        slots, with at least :meth:`max_ticks` records. Every byte of each written record
        is set, padding included (to zero), so a reused slot keeps nothing from before;
        records after the written ones are left as they were. Ticks, counters and
        ``recv_time_ns`` are as in :meth:`decode`.

        Raises :class:`~kitefeed.errors.InvalidRequestError` when ``out`` is not such an
        array or is shorter than :meth:`max_ticks`; nothing is written or counted then.
        """
        if isinstance(message, memoryview):
            message = message.cast("B")
        # A ring rebuilds the dtype from its header: equal to TICK_DTYPE but another object,
        # and comparing two structured dtypes walks every field (about 2 us), so the last
        # dtype object found equal is remembered.
        dtype = getattr(out, "dtype", None)
        if dtype is not TICK_DTYPE and dtype is not self._accepted_dtype:
            if not isinstance(out, np.ndarray) or dtype != TICK_DTYPE:
                raise InvalidRequestError(
                    f"invalid out {type(out).__name__} of dtype {dtype}: expected a writable "
                    "1-D numpy array of TICK_DTYPE"
                )
            self._accepted_dtype = dtype
        if out.ndim != 1 or not out.flags.writeable:
            raise InvalidRequestError(
                f"invalid out {type(out).__name__} of dtype {dtype}: expected a writable "
                "1-D numpy array of TICK_DTYPE"
            )
        needed = self.max_ticks(message)
        if len(out) < needed:
            raise InvalidRequestError(
                f"out holds {len(out)} records but the message can carry {needed} ticks; "
                "size out with Decoder.max_ticks(message)"
            )
        if recv_time_ns is None:
            recv_time_ns = time.time_ns()

        size = len(message)
        counts = self._counts
        counts["messages"] += 1
        counts["bytes"] += size
        if size < 2:
            counts["heartbeats"] += 1
            return 0

        # The C decoder writes one contiguous run of records, which a strided `out` is not.
        target = out if out.flags.c_contiguous else np.empty(needed, dtype=TICK_DTYPE)
        written = self._decode_packets(message, target, recv_time_ns)
        if target is not out:
            out.view(_VOID)[:written] = target.view(_VOID)[:written]
        counts["ticks"] += written
        return written

    def decode_into_unchecked(self, message: bytes | memoryview, out: np.ndarray, recv_time_ns: int) -> int:
        """Decode like :meth:`decode_into`, without checking ``out`` or the message's size.

        For a hot path that has already checked that ``out`` is a writable, C-contiguous 1-D array of
        :data:`TICK_DTYPE` with :meth:`max_ticks` records, and that the message is no
        heartbeat (2 bytes or more, byte-format buffer), such as the worker filling
        ring slots. Anything else may corrupt memory.
        """
        counts = self._counts
        counts["messages"] += 1
        counts["bytes"] += len(message)
        written = self._decode_packets(message, out, recv_time_ns)
        counts["ticks"] += written
        return written

    def _decode_packets(
        self, message: bytes | bytearray | memoryview, out: np.ndarray, recv_time_ns: int
    ) -> int:
        # The walk and the decode run in C: a Python walk costs about 100 ns per packet and
        # numpy about 1 us per call, tens of calls per packet kind, which small and mixed
        # messages cannot amortise.
        written, packets, short, truncated, unknown, missing = _decode.decode(
            message, out, recv_time_ns, self.key_index, self.connection_index
        )
        counts = self._counts
        counts["packets"] += packets
        counts["short_packets"] += short
        counts["truncated_packets"] += truncated
        counts["unknown_length_packets"] += unknown
        counts["missing_packets"] += missing
        return written
