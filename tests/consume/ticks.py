"""Decoded ticks of every packet kind, built by encoding random wire values and decoding them."""

from __future__ import annotations

import numpy as np

from kitefeed.parsers import KIND_MODE, TICK_DTYPE, Decoder, PacketKind, encode_frame
from kitefeed.parsers.dtype import INDEX_SEGMENT

RECV_NS = 1_700_000_000_123_456_789
"""recv_time of every decoded tick: 2023-11-14 22:13:20.123456789 UTC, with a fraction of a second."""


def decoded_ticks(seed: int, count: int = 200) -> np.ndarray:
    """Return ``count`` ticks as the decoder produces them, of every packet kind, seeded by ``seed``.

    Kinds cycle through :class:`PacketKind`; one in five full and index-full packets has
    a zero exchange timestamp, which decodes to NaT.
    """
    rng = np.random.default_rng(seed)
    ticks = np.zeros(count, dtype=TICK_DTYPE)
    kinds = np.array([list(PacketKind)[row % len(PacketKind)] for row in range(count)], dtype=np.uint8)
    is_index = (kinds == PacketKind.INDEX_QUOTE) | (kinds == PacketKind.INDEX_FULL)
    segments = np.where(is_index, INDEX_SEGMENT, 1).astype(np.uint32)

    ticks["kind"] = kinds
    ticks["mode"] = [KIND_MODE[PacketKind(kind)] for kind in kinds]
    ticks["segment"] = segments
    ticks["tradable"] = ~is_index
    ticks["instrument_token"] = (rng.integers(1, 1 << 24, size=count).astype(np.uint32) << 8) | segments
    for name in ("last_price", "average_traded_price", "open", "high", "low", "close"):
        ticks[name] = rng.integers(1, 10_000_000, size=count) / 100
    for name in ("bid_price", "ask_price"):
        ticks[name] = rng.integers(0, 10_000_000, size=(count, 5)) / 100
    for name in ("last_traded_quantity", "volume_traded", "total_buy_quantity", "total_sell_quantity", "oi"):
        ticks[name] = rng.integers(0, 1 << 32, size=count, dtype=np.uint64)
    ticks["oi_day_high"] = ticks["oi"]
    ticks["oi_day_low"] = ticks["oi"]
    for name in ("bid_quantity", "ask_quantity"):
        ticks[name] = rng.integers(0, 1 << 32, size=(count, 5), dtype=np.uint64)
    for name in ("bid_orders", "ask_orders"):
        ticks[name] = rng.integers(0, 1 << 16, size=(count, 5))

    seconds = rng.integers(1_600_000_000, 1_800_000_000, size=count)
    seconds[rng.random(count) < 0.2] = 0
    ticks["exchange_timestamp"] = (seconds * 1_000_000_000).astype("M8[ns]")
    ticks["last_trade_time"] = (seconds * 1_000_000_000).astype("M8[ns]")

    return Decoder(key_index=1, connection_index=2).decode(encode_frame(ticks), RECV_NS)
