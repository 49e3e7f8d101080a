"""Encoder then decoder returns the ticks that went in."""

from __future__ import annotations

import numpy as np
import pytest

from kitefeed.parsers import HEARTBEAT, KIND_MODE, TICK_DTYPE, Decoder, PacketKind, encode_frame
from kitefeed.parsers.dtype import INDEX_SEGMENT
from kitefeed.parsers.encoder import raw_divisors

from .frames import SEGMENTS, assert_ticks_equal

RECV = 1_650_000_000_000_000_000


def random_ticks(rng: np.random.Generator, count: int) -> np.ndarray:
    """Build ticks as the decoder would produce them from random raw wire values."""
    ticks = np.zeros(count, dtype=TICK_DTYPE)
    for name in TICK_DTYPE.names:
        if ticks[name].dtype.kind == "f":
            ticks[name] = np.nan
        elif ticks[name].dtype.kind == "M":
            ticks[name] = np.datetime64("NaT")

    def raw(shape: int | tuple[int, ...] = count) -> np.ndarray:
        values = rng.integers(0, 1 << 32, size=shape, dtype=np.uint64)
        edges = rng.random(shape) < 0.1
        values[edges] = rng.choice([0, 0xFFFFFFFF], size=int(edges.sum()))
        return values

    segments = rng.choice(SEGMENTS, size=count).astype(np.uint32)
    kinds = rng.choice([int(kind) for kind in PacketKind], size=count)
    ticks["instrument_token"] = (rng.integers(0, 1 << 24, size=count).astype(np.uint32) << 8) | segments
    ticks["segment"] = segments
    ticks["tradable"] = segments != INDEX_SEGMENT
    ticks["kind"] = kinds
    ticks["mode"] = [KIND_MODE[PacketKind(kind)] for kind in kinds]
    divisors = raw_divisors(segments)
    last_raw = raw()
    ticks["last_price"] = last_raw.astype(np.float64) / divisors

    carried = kinds != PacketKind.LTP
    close_raw = raw()
    for name in ("open", "high", "low"):
        ticks[name] = np.where(carried, raw().astype(np.float64) / divisors, np.nan)
    close = close_raw.astype(np.float64) / divisors
    ticks["close"] = np.where(carried, close, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(close == 0, 0.0, ((ticks["last_price"] - close) * 100) / close)
    ticks["change"] = np.where(carried, change, np.nan)

    # The encoder writes last - close as a wrapping int32, as the exchange does.
    is_index = (kinds == PacketKind.INDEX_QUOTE) | (kinds == PacketKind.INDEX_FULL)
    net_raw = (last_raw.astype(np.int64) - close_raw.astype(np.int64)).astype(np.int32)
    ticks["net_change"] = np.where(is_index, net_raw / divisors, np.nan)

    quote_or_full = (kinds == PacketKind.QUOTE) | (kinds == PacketKind.FULL)
    ticks["average_traded_price"] = np.where(quote_or_full, raw().astype(np.float64) / divisors, np.nan)
    for name in ("last_traded_quantity", "volume_traded", "total_buy_quantity", "total_sell_quantity"):
        ticks[name] = np.where(quote_or_full, raw(), 0)

    full = kinds == PacketKind.FULL
    timed = full | (kinds == PacketKind.INDEX_FULL)
    for name, rows in (("exchange_timestamp", timed), ("last_trade_time", full)):
        seconds = raw().astype(np.int64)
        times = (seconds * 1_000_000_000).view("M8[ns]")
        times[(seconds == 0) | ~rows] = np.datetime64("NaT")
        ticks[name] = times
    for name in ("oi", "oi_day_high", "oi_day_low"):
        ticks[name] = np.where(full, raw(), 0)
    for prefix in ("bid", "ask"):
        ticks[f"{prefix}_quantity"] = np.where(full[:, None], raw((count, 5)), 0)
        prices = raw((count, 5)).astype(np.float64) / divisors[:, None]
        ticks[f"{prefix}_price"] = np.where(full[:, None], prices, np.nan)
        ticks[f"{prefix}_orders"] = np.where(full[:, None], rng.integers(0, 1 << 16, size=(count, 5)), 0)

    ticks["recv_time"] = np.datetime64(RECV, "ns")
    return ticks


@pytest.mark.parametrize("seed", range(20))
def test_encode_decode_round_trip(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ticks = random_ticks(rng, int(rng.integers(1, 300)))
    decoder = Decoder()
    decoded = decoder.decode(encode_frame(ticks), RECV)
    assert_ticks_equal(decoded, ticks)
    assert decoder.stats().errors == 0


@pytest.mark.parametrize("kind", list(PacketKind))
def test_round_trip_single_kind(kind: PacketKind) -> None:
    rng = np.random.default_rng(int(kind))
    ticks = random_ticks(rng, 400)
    ticks = ticks[ticks["kind"] == kind]
    assert len(ticks) > 0
    assert_ticks_equal(Decoder().decode(encode_frame(ticks), RECV), ticks)


def test_heartbeat_decodes_to_nothing() -> None:
    decoder = Decoder()
    assert len(decoder.decode(HEARTBEAT)) == 0
    assert decoder.stats().heartbeats == 1
