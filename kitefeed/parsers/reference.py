"""Plain per-packet decoder, the twin that tests check :class:`~.decoder.Decoder` against.

It reads one field at a time with :mod:`struct` and follows the same conventions and the
same skip rules as the vectorised decoder, written as directly as possible. It is slow
(Python work for every field) and meant for tests, not for production feeds.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from .dtype import DEPTH_LEVELS, INDEX_SEGMENT, KIND_MODE, TICK_DTYPE, PacketKind

__all__ = ["ReferenceResult", "reference_decode"]

_KIND_BY_LENGTH = {
    8: PacketKind.LTP,
    28: PacketKind.INDEX_QUOTE,
    32: PacketKind.INDEX_FULL,
    44: PacketKind.QUOTE,
    184: PacketKind.FULL,
}


class ReferenceResult:
    """Ticks and error counters of one message, as :func:`reference_decode` returns them."""

    def __init__(self) -> None:
        self.ticks: np.ndarray = np.empty(0, dtype=TICK_DTYPE)
        self.short_packets = 0
        self.truncated_packets = 0
        self.unknown_length_packets = 0
        self.missing_packets = 0


def _u32(packet: bytes, offset: int) -> int:
    return struct.unpack(">I", packet[offset : offset + 4])[0]


def _time(seconds: int) -> np.datetime64:
    if seconds == 0:
        return np.datetime64("NaT", "ns")
    return np.datetime64(seconds, "s").astype("M8[ns]")


def _divisor(segment: int) -> float:
    if segment == 3:
        return 10000000.0
    if segment == 6 or segment == 12:
        return 10000.0
    return 100.0


def _split(message: bytes, result: ReferenceResult) -> list[tuple[int, bytes]]:
    """Return ``(declared length, present bytes)`` of each packet whose prefix is present."""
    count = struct.unpack(">H", message[0:2])[0]
    packets = []
    position = 2
    for index in range(count):
        if position + 2 > len(message):
            result.missing_packets = count - index
            break
        declared = struct.unpack(">H", message[position : position + 2])[0]
        packets.append((declared, message[position + 2 : position + 2 + declared]))
        position += 2 + declared
    return packets


def _decode_packet(packet: bytes, record: np.ndarray) -> None:
    """Fill the 0-d ``record`` from one complete packet of a known length."""
    kind = _KIND_BY_LENGTH[len(packet)]
    token = _u32(packet, 0)
    segment = token & 0xFF
    divisor = _divisor(segment)
    record["instrument_token"] = token
    record["segment"] = segment
    record["tradable"] = segment != INDEX_SEGMENT
    record["kind"] = kind
    record["mode"] = KIND_MODE[kind]
    last_price = _u32(packet, 4) / divisor
    record["last_price"] = last_price
    if kind == PacketKind.LTP:
        return

    if kind in (PacketKind.INDEX_QUOTE, PacketKind.INDEX_FULL):
        names = ("high", "low", "open", "close")
        offsets = (8, 12, 16, 20)
    else:
        names = ("open", "high", "low", "close")
        offsets = (28, 32, 36, 40)
    for name, offset in zip(names, offsets):
        record[name] = _u32(packet, offset) / divisor
    close = _u32(packet, offsets[names.index("close")]) / divisor
    record["change"] = 0.0 if close == 0 else ((last_price - close) * 100) / close

    if kind in (PacketKind.INDEX_QUOTE, PacketKind.INDEX_FULL):
        record["net_change"] = struct.unpack(">i", packet[24:28])[0] / divisor
        if kind == PacketKind.INDEX_FULL:
            record["exchange_timestamp"] = _time(_u32(packet, 28))
        return

    record["last_traded_quantity"] = _u32(packet, 8)
    record["average_traded_price"] = _u32(packet, 12) / divisor
    record["volume_traded"] = _u32(packet, 16)
    record["total_buy_quantity"] = _u32(packet, 20)
    record["total_sell_quantity"] = _u32(packet, 24)
    if kind == PacketKind.QUOTE:
        return

    record["last_trade_time"] = _time(_u32(packet, 44))
    record["oi"] = _u32(packet, 48)
    record["oi_day_high"] = _u32(packet, 52)
    record["oi_day_low"] = _u32(packet, 56)
    record["exchange_timestamp"] = _time(_u32(packet, 60))
    for level in range(2 * DEPTH_LEVELS):
        offset = 64 + 12 * level
        prefix = "bid" if level < DEPTH_LEVELS else "ask"
        column = level % DEPTH_LEVELS
        record[f"{prefix}_quantity"][column] = _u32(packet, offset)
        record[f"{prefix}_price"][column] = _u32(packet, offset + 4) / divisor
        record[f"{prefix}_orders"][column] = struct.unpack(">H", packet[offset + 8 : offset + 10])[0]


def _blank_record(recv_time_ns: int, key_index: int, connection_index: int) -> np.ndarray:
    record = np.zeros((), dtype=TICK_DTYPE)
    for name in ("last_price", "average_traded_price", "open", "high", "low", "close", "change", "net_change"):
        record[name] = math.nan
    record["bid_price"] = math.nan
    record["ask_price"] = math.nan
    for name in ("exchange_timestamp", "last_trade_time"):
        record[name] = np.datetime64("NaT", "ns")
    record["recv_time"] = np.datetime64(recv_time_ns, "ns")
    record["key_index"] = key_index
    record["connection_index"] = connection_index
    return record


def reference_decode(
    message: bytes | bytearray | memoryview, recv_time_ns: int, key_index: int = 0, connection_index: int = 0
) -> ReferenceResult:
    """Decode one binary message packet by packet, with the skip rules of the vectorised decoder.

    ``result.ticks`` is a new 1-D array of :data:`TICK_DTYPE` in wire order.
    """
    message = bytes(message)
    result = ReferenceResult()
    if len(message) < 2:
        return result

    records = []
    for declared, packet in _split(message, result):
        if declared < 4 or len(packet) < 4:
            result.short_packets += 1
        elif len(packet) < declared:
            result.truncated_packets += 1
        elif declared not in _KIND_BY_LENGTH:
            result.unknown_length_packets += 1
        else:
            record = _blank_record(recv_time_ns, key_index, connection_index)
            _decode_packet(packet, record)
            records.append(record)
    result.ticks = np.zeros(len(records), dtype=TICK_DTYPE)
    for index, record in enumerate(records):
        result.ticks[index] = record
    return result
