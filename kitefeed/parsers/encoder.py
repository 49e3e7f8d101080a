"""Encode ticks into Kite binary messages, as the server would send them.

Used by the simulator and the tests. Prices are rounded to the segment's raw unit,
times truncated to whole epoch seconds, so encoding then decoding returns the input
for values the wire can carry.
"""

from __future__ import annotations

import numpy as np

from .dtype import INDEX_SEGMENT, TICK_DTYPE, Mode, PacketKind
from .layout import KIND_LENGTH, WIRE_DTYPES

__all__ = ["HEARTBEAT", "encode_frame", "kind_for", "raw_divisors"]

HEARTBEAT = b"\x00"
"""The 1-byte binary message the server sends about once a second."""

_INDEX_KIND = {Mode.LTP: PacketKind.LTP, Mode.QUOTE: PacketKind.INDEX_QUOTE, Mode.FULL: PacketKind.INDEX_FULL}
_TRADABLE_KIND = {Mode.LTP: PacketKind.LTP, Mode.QUOTE: PacketKind.QUOTE, Mode.FULL: PacketKind.FULL}


def kind_for(mode: Mode | int, segment: int) -> PacketKind:
    """Return the packet kind the server sends for an instrument of ``segment`` in ``mode``."""
    table = _INDEX_KIND if segment == INDEX_SEGMENT else _TRADABLE_KIND
    return table[Mode(mode)]


def raw_divisors(segments: np.ndarray) -> np.ndarray:
    """Return the float64 price divisor for each segment in ``segments``."""
    segments = np.asarray(segments)
    divisors = np.full(segments.shape, 100.0)
    divisors[segments == 3] = 1e7
    divisors[(segments == 6) | (segments == 12)] = 1e4
    return divisors


def _raw_price(prices: np.ndarray, divisors: np.ndarray) -> np.ndarray:
    scaled = np.nan_to_num(np.asarray(prices, dtype=np.float64) * divisors, nan=0.0)
    return np.rint(scaled).astype(np.uint32)


def _epoch_seconds(times: np.ndarray) -> np.ndarray:
    ns = times.astype("M8[ns]").view(np.int64)
    seconds = ns // 1_000_000_000
    seconds[np.isnat(times)] = 0
    return seconds.astype(np.uint32)


def _encode_group(kind: PacketKind, ticks: np.ndarray) -> np.ndarray:
    """Encode ticks that all have packet kind ``kind``; returns a wire-dtype array."""
    wire = np.zeros(len(ticks), dtype=WIRE_DTYPES[kind])
    tokens = ticks["instrument_token"]
    divisors = raw_divisors(tokens & 0xFF)
    wire["token"] = tokens
    wire["last_price"] = _raw_price(ticks["last_price"], divisors)
    if kind == PacketKind.LTP:
        return wire

    for name in ("open", "high", "low", "close"):
        wire[name] = _raw_price(ticks[name], divisors)

    if kind in (PacketKind.INDEX_QUOTE, PacketKind.INDEX_FULL):
        # The exchange sends last - close in raw units as a signed 32-bit integer.
        difference = wire["last_price"].astype(np.int64) - wire["close"].astype(np.int64)
        wire["net_change"] = difference.astype(np.int32)
        if kind == PacketKind.INDEX_FULL:
            wire["exchange_timestamp"] = _epoch_seconds(ticks["exchange_timestamp"])
        return wire

    wire["average_traded_price"] = _raw_price(ticks["average_traded_price"], divisors)
    for name in ("last_traded_quantity", "volume_traded", "total_buy_quantity", "total_sell_quantity"):
        wire[name] = ticks[name]
    if kind == PacketKind.QUOTE:
        return wire

    wire["last_trade_time"] = _epoch_seconds(ticks["last_trade_time"])
    wire["exchange_timestamp"] = _epoch_seconds(ticks["exchange_timestamp"])
    for name in ("oi", "oi_day_high", "oi_day_low"):
        wire[name] = ticks[name]
    for side, prefix in (("bids", "bid"), ("asks", "ask")):
        wire[side]["quantity"] = ticks[f"{prefix}_quantity"]
        wire[side]["price"] = _raw_price(ticks[f"{prefix}_price"], divisors[:, None])
        wire[side]["orders"] = ticks[f"{prefix}_orders"]
    return wire


def encode_frame(ticks: np.ndarray) -> bytes:
    """Encode ``ticks`` (an array of :data:`TICK_DTYPE`) as one binary message, in array order.

    Each tick is sent as the packet kind in its ``kind`` field. Raises ``ValueError``
    for an unknown kind or for more than 65,535 ticks, the most one message can count.
    """
    if ticks.dtype != TICK_DTYPE:
        raise ValueError(f"ticks have dtype {ticks.dtype}; expected kitefeed TICK_DTYPE")
    count = len(ticks)
    if count > 0xFFFF:
        raise ValueError(f"{count} ticks do not fit one message; split them into messages of at most 65535")

    kinds = ticks["kind"]
    unknown = set(np.unique(kinds).tolist()) - {int(k) for k in PacketKind}
    if unknown:
        raise ValueError(f"unknown packet kind {sorted(unknown)} in ticks; expected values of PacketKind")

    # Each packet takes a 2-byte length prefix plus its body; the offsets keep array order
    # while each kind is encoded as one vectorised group.
    lengths = np.zeros(count, dtype=np.int64)
    for kind in PacketKind:
        lengths[kinds == kind] = KIND_LENGTH[kind]
    starts = 2 + np.concatenate(([0], np.cumsum(lengths + 2)[:-1])) if count else lengths
    out = np.empty(2 + int(lengths.sum()) + 2 * count, dtype=np.uint8)
    out[:2] = np.frombuffer(count.to_bytes(2, "big"), dtype=np.uint8)

    for kind in PacketKind:
        rows = np.flatnonzero(kinds == kind)
        if rows.size == 0:
            continue
        length = KIND_LENGTH[kind]
        body = _encode_group(kind, ticks[rows]).view(np.uint8).reshape(rows.size, length)
        block = np.empty((rows.size, length + 2), dtype=np.uint8)
        block[:, :2] = np.frombuffer(length.to_bytes(2, "big"), dtype=np.uint8)
        block[:, 2:] = body
        positions = starts[rows][:, None] + np.arange(length + 2)
        out[positions] = block
    return out.tobytes()
