"""Market state: deterministic start from the token, and invariants kept by the random walk."""

from __future__ import annotations

import numpy as np

from kitefeed.parsers import TICK_DTYPE, PacketKind, encode_frame
from kitefeed.parsers.decoder import Decoder
from kitefeed.parsers.encoder import raw_divisors
from kitefeed.sim.market import Market
from kitefeed.sim.protocol import encode_frames, kinds_for, parse_request

SEED = 7


def _tokens(count: int, seed: int = SEED) -> list[int]:
    rng = np.random.default_rng(seed)
    codes = rng.choice(1 << 20, count, replace=False).astype(np.uint32) << 8
    segments = rng.choice(np.array([1, 2, 3, 4, 5, 6, 7, 9, 12], dtype=np.uint32), count)
    return (codes | segments).tolist()


def test_start_state_depends_only_on_token() -> None:
    tokens = _tokens(500)
    batch = Market(SEED)
    batch.rows_for(tokens)
    single = Market(SEED)
    for token in reversed(tokens):
        single.rows_for([token])

    rows = single.rows_for(tokens)
    time_free = [name for name in TICK_DTYPE.names if "time" not in name]
    for name in time_free:
        np.testing.assert_array_equal(batch.state[name], single.state[rows][name], err_msg=name)

    other = Market(SEED + 1)
    other.rows_for(tokens)
    assert not np.array_equal(other.state["last_price"], batch.state["last_price"])


def test_start_prices_plausible_per_segment() -> None:
    market = Market(SEED)
    market.rows_for(_tokens(2000))
    state = market.state
    segment = state["segment"]
    price = state["last_price"]
    assert np.all((price[segment == 3] > 80) & (price[segment == 3] < 87))
    assert np.all((price[segment == 9] > 9_000) & (price[segment == 9] < 90_000))
    assert np.all((price[segment == 1] > 90) & (price[segment == 1] < 5_500))
    assert np.all(state["oi"][np.isin(segment, [1, 4, 9])] == 0)
    assert np.all(state["oi"][segment == 2] > 0)


def test_walk_keeps_fields_consistent() -> None:
    market = Market(SEED)
    rows = market.rows_for(_tokens(3000))
    rng = np.random.default_rng(SEED)
    before = market.state.copy()
    for _ in range(200):
        market.advance(rows[rng.random(rows.size) < 0.3])
    state = market.state

    assert not np.array_equal(state["last_price"], before["last_price"])
    assert np.all(state["low"] <= state["last_price"])
    assert np.all(state["last_price"] <= state["high"])
    assert np.all(state["high"] >= before["high"])
    assert np.all(state["low"] <= before["low"])
    np.testing.assert_array_equal(state["close"], before["close"])
    np.testing.assert_array_equal(state["open"], before["open"])

    # Prices stay whole multiples of the raw unit, so the wire carries them exactly.
    divisors = raw_divisors(state["segment"])
    raw = state["last_price"] * divisors
    np.testing.assert_allclose(raw, np.rint(raw), rtol=0, atol=1e-6)

    tradable = state[state["tradable"]]
    start = before[before["tradable"]]
    assert np.all(tradable["volume_traded"] >= start["volume_traded"])
    assert np.all(tradable["oi_day_low"] <= tradable["oi"])
    assert np.all(tradable["oi"] <= tradable["oi_day_high"])
    live_bids = tradable["bid_quantity"] > 0
    assert np.all(tradable["bid_price"][live_bids] > 0)
    assert np.all(tradable["bid_price"][:, 0] < tradable["ask_price"][:, 0])
    assert np.all(np.diff(tradable["ask_price"], axis=1) > 0)

    index = state[~state["tradable"]]
    assert np.all(index["volume_traded"] == 0)
    assert np.all(index["bid_price"] == 0)
    np.testing.assert_allclose(index["net_change"], index["last_price"] - index["close"])


def test_state_survives_wire_round_trip() -> None:
    market = Market(SEED)
    rows = market.rows_for(_tokens(1000))
    market.advance(rows)
    ticks = market.state[rows]
    modes = np.full(len(ticks), 3, dtype=np.uint8)
    ticks["kind"] = kinds_for(ticks["segment"], modes)
    ticks["mode"] = modes

    decoded = Decoder().decode(encode_frame(ticks))
    assert set(np.unique(decoded["kind"]).tolist()) == {PacketKind.INDEX_FULL, PacketKind.FULL}
    for name in ("instrument_token", "last_price", "open", "high", "low", "close"):
        np.testing.assert_array_equal(decoded[name], ticks[name], err_msg=name)
    full = ticks["tradable"]
    for name in ("volume_traded", "average_traded_price", "bid_price", "ask_orders", "oi"):
        np.testing.assert_array_equal(decoded[name][full], ticks[name][full], err_msg=name)


def test_encode_frames_splits_large_batches() -> None:
    ticks = np.zeros(7, dtype=TICK_DTYPE)
    ticks["instrument_token"] = np.arange(1, 8)
    ticks["kind"] = PacketKind.LTP
    frames = list(encode_frames(ticks, limit=3))
    assert [int.from_bytes(frame[:2], "big") for frame in frames] == [3, 3, 1]
    assert b"".join(frame[2:] for frame in frames) == encode_frame(ticks)[2:]


def test_parse_request_cases() -> None:
    assert parse_request('{"a": "subscribe", "v": [1, "2", 3.0, false, 4294967295]}').tokens == [1, 4294967295]
    mode = parse_request('{"a":"mode","v":["ltp",[5]]}')
    assert mode is not None
    assert mode.mode == 1
    assert mode.tokens == [5]
    for text in ('{"a": "mode", "v": ["LTP", [5]]}', '{"a": "subscribe"}', "{", '"subscribe"', '{"a": 1, "v": []}'):
        assert parse_request(text) is None, text
