"""Vectorised decoder of Kite binary messages into :data:`TICK_DTYPE` arrays.

A binary message is a 2-byte packet count followed by packets, each prefixed with its
2-byte length (all big-endian). The decoder walks the length prefixes, groups the
packets by length and decodes each group with one numpy view, so the cost per packet
is a few array operations rather than Python code.

Damaged input never raises. A packet that cannot be decoded is skipped and counted in
:class:`DecodeStats`; the good packets of the same message are still returned.
"""

from __future__ import annotations

import struct
import time

import msgspec
import numpy as np

from ..errors import InvalidRequestError
from .dtype import INDEX_SEGMENT, KIND_MODE, TICK_DTYPE, PacketKind
from .layout import LENGTH_KIND, WIRE_DTYPES

__all__ = ["DecodeStats", "Decoder"]

_NAT = np.iinfo(np.int64).min
_NS_PER_SECOND = 1_000_000_000
_U16 = struct.Struct(">H")

# Price divisor of each possible segment byte, so one gather replaces per-row branches.
_DIVISOR_BY_SEGMENT = np.full(256, 100.0)
_DIVISOR_BY_SEGMENT[3] = 1e7
_DIVISOR_BY_SEGMENT[[6, 12]] = 1e4

# PacketKind of each possible u16 length, 0 where the length is not a packet kind.
_KIND_BY_LENGTH = np.zeros(1 << 16, dtype=np.uint8)
for _length, _kind in LENGTH_KIND.items():
    _KIND_BY_LENGTH[_length] = _kind

# A record with every field absent: NaN prices, NaT times, zero integers and zero padding.
_BLANK = np.zeros(1, dtype=TICK_DTYPE)
for _name in TICK_DTYPE.names:
    _base = TICK_DTYPE[_name].base
    if _base.kind == "f":
        _BLANK[_name] = np.nan
    elif _base.kind == "M":
        _BLANK[_name] = np.datetime64("NaT")


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


def _epoch_to_ns(seconds: np.ndarray) -> np.ndarray:
    """Convert u32 epoch seconds to datetime64[ns]; 0 becomes NaT."""
    ns = seconds.astype(np.int64) * _NS_PER_SECOND
    ns[seconds == 0] = _NAT
    return ns.view("M8[ns]")


def _decode_group(kind: PacketKind, block: np.ndarray) -> np.ndarray:
    """Decode a ``(k, length)`` uint8 block of packets of one kind into ``k`` ticks.

    ``recv_time``, ``key_index`` and ``connection_index`` are left for the caller.
    """
    wire = block.view(WIRE_DTYPES[kind])[:, 0]
    # np.repeat copies whole records, padding included, and is faster than filling
    # fields of a new array; zero padding keeps the output bytes deterministic.
    ticks = np.repeat(_BLANK, len(wire))

    tokens = wire["token"]
    segments = (tokens & 0xFF).astype(np.uint8)
    divisors = _DIVISOR_BY_SEGMENT[segments]
    ticks["instrument_token"] = tokens
    ticks["segment"] = segments
    ticks["tradable"] = segments != INDEX_SEGMENT
    ticks["kind"] = kind
    ticks["mode"] = KIND_MODE[kind]
    last_price = wire["last_price"].astype(np.float64) / divisors
    ticks["last_price"] = last_price
    if kind == PacketKind.LTP:
        return ticks

    for name in ("open", "high", "low", "close"):
        ticks[name] = wire[name].astype(np.float64) / divisors

    # Percent change in the reference's operation order, so results are bit-identical;
    # `where` leaves 0.0 for a zero close without a division warning.
    close = ticks["close"]
    change = np.zeros(len(wire))
    np.divide((last_price - close) * 100, close, out=change, where=close != 0)
    ticks["change"] = change

    if kind in (PacketKind.INDEX_QUOTE, PacketKind.INDEX_FULL):
        ticks["net_change"] = wire["net_change"].astype(np.float64) / divisors
        if kind == PacketKind.INDEX_FULL:
            ticks["exchange_timestamp"] = _epoch_to_ns(wire["exchange_timestamp"])
        return ticks

    ticks["average_traded_price"] = wire["average_traded_price"].astype(np.float64) / divisors
    for name in ("last_traded_quantity", "volume_traded", "total_buy_quantity", "total_sell_quantity"):
        ticks[name] = wire[name]
    if kind == PacketKind.QUOTE:
        return ticks

    ticks["last_trade_time"] = _epoch_to_ns(wire["last_trade_time"])
    ticks["exchange_timestamp"] = _epoch_to_ns(wire["exchange_timestamp"])
    for name in ("oi", "oi_day_high", "oi_day_low"):
        ticks[name] = wire[name]
    for side, prefix in (("bids", "bid"), ("asks", "ask")):
        depth = wire[side]
        ticks[f"{prefix}_quantity"] = depth["quantity"]
        ticks[f"{prefix}_price"] = depth["price"].astype(np.float64) / divisors[:, None]
        ticks[f"{prefix}_orders"] = depth["orders"]
    return ticks


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

    def stats(self) -> DecodeStats:
        """Return a copy of the cumulative counters."""
        return DecodeStats(**self._counts)

    def decode(self, message: bytes | bytearray | memoryview, recv_time_ns: int | None = None) -> np.ndarray:
        """Decode one binary message into ticks in wire order.

        Returns a new, writable 1-D array of :data:`TICK_DTYPE` that shares no memory with
        ``message``. The array is empty for a heartbeat (fewer than 2 bytes) or a message
        without packets. ``recv_time_ns`` is written into every tick's ``recv_time``, in
        nanoseconds since the Unix epoch (UTC), and defaults to now. Bytes after the
        declared packets are ignored.
        """
        if recv_time_ns is None:
            recv_time_ns = time.time_ns()
        buffer = np.frombuffer(message, dtype=np.uint8)
        size = buffer.size
        counts = self._counts
        counts["messages"] += 1
        counts["bytes"] += size
        if size < 2:
            counts["heartbeats"] += 1
            return np.empty(0, dtype=TICK_DTYPE)

        ticks = self._decode_packets(message, buffer)
        counts["ticks"] += len(ticks)
        ticks["recv_time"] = np.datetime64(recv_time_ns, "ns")
        ticks["key_index"] = self.key_index
        ticks["connection_index"] = self.connection_index
        return ticks

    def _decode_packets(self, message: bytes | bytearray | memoryview, buffer: np.ndarray) -> np.ndarray:
        counts = self._counts
        size = buffer.size
        count = _U16.unpack_from(message, 0)[0]

        # Fast path: when every packet has the first packet's length, the packets sit at a
        # fixed stride, so one vectorised comparison checks all prefixes and a strided view
        # replaces both the Python walk and the gather copy.
        if count and size >= 4:
            length = _U16.unpack_from(message, 2)[0]
            stride = length + 2
            if 2 + count * stride <= size:
                starts = 4 + stride * np.arange(count)
                prefixes = (buffer[starts - 2].astype(np.uint16) << 8) | buffer[starts - 1]
                if (prefixes == length).all():
                    counts["packets"] += count
                    kind = int(_KIND_BY_LENGTH[length])
                    if length < 4:
                        counts["short_packets"] += count
                    elif not kind:
                        counts["unknown_length_packets"] += count
                    else:
                        block = np.lib.stride_tricks.as_strided(
                            buffer[4:], shape=(count, length), strides=(stride, 1), writeable=False
                        )
                        return _decode_group(PacketKind(kind), block)
                    return np.empty(0, dtype=TICK_DTYPE)

        # General path: the walk is sequential because each prefix gives the next offset.
        starts_list: list[int] = []
        declared_list: list[int] = []
        position = 2
        unpack_from = _U16.unpack_from
        for _ in range(count):
            if position + 2 > size:
                break
            length = unpack_from(message, position)[0]
            starts_list.append(position + 2)
            declared_list.append(length)
            position += 2 + length
        walked = len(starts_list)
        counts["packets"] += walked
        counts["missing_packets"] += count - walked

        starts = np.array(starts_list, dtype=np.int64)
        declared = np.array(declared_list, dtype=np.int64)
        present = np.minimum(declared, size - starts)
        short = present < 4
        complete = present == declared
        kinds = _KIND_BY_LENGTH[declared]
        good = complete & ~short & (kinds != 0)
        counts["short_packets"] += int(short.sum())
        counts["truncated_packets"] += int((~short & ~complete).sum())
        counts["unknown_length_packets"] += int((~short & complete & (kinds == 0)).sum())

        # Each group is gathered into a contiguous (k, length) block, then its ticks are
        # scattered to their wire-order positions among the good packets.
        output_index = np.cumsum(good) - 1
        ticks = np.zeros(int(good.sum()), dtype=TICK_DTYPE)
        # Scattering whole records as raw bytes is several times faster than a structured
        # assignment, which copies field by field.
        record_bytes = ticks.view(np.uint8).reshape(len(ticks), TICK_DTYPE.itemsize)
        for kind in np.unique(kinds[good]).tolist():
            rows = np.flatnonzero(good & (kinds == kind))
            length = int(declared[rows[0]])
            block = buffer[starts[rows][:, None] + np.arange(length)]
            group = _decode_group(PacketKind(kind), block)
            record_bytes[output_index[rows]] = group.view(np.uint8).reshape(len(group), TICK_DTYPE.itemsize)
        return ticks
