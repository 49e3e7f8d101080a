"""Simulated instrument state: created lazily from the token, moved by a vectorised random walk.

One :class:`Market` serves every connection of a simulator, so a token has the same price
on all of them. State lives in one :data:`~kitefeed.parsers.TICK_DTYPE` array with a row
per instrument ever requested; rows are never removed. Prices are always whole multiples
of the segment's raw price unit, so a client decodes exactly the values stored here.
"""

from __future__ import annotations

import time

import numpy as np

from ..parsers import DEPTH_LEVELS, INDEX_SEGMENT, TICK_DTYPE
from ..parsers.encoder import raw_divisors

__all__ = ["Market"]

_U32_MAX = 0xFFFF_FFFF

# Raw price units of one tick size per segment: 0.0025 for currencies (CDS at 1e7, BCD at
# 1e4), 0.01 for NCO commodities and indices, 0.05 for everything else.
_TICK_RAW = {3: 25_000, 6: 25, 12: 100, INDEX_SEGMENT: 1}
_DEFAULT_TICK_RAW = 5

# Segments whose instruments are derivatives and so carry open interest.
_OI_SEGMENTS = (2, 3, 5, 6, 7, 12)

_VOLATILITY = 5e-4  # standard deviation of the log return of one tick
_REVERSION = 2e-3  # fraction of the log distance to the previous close pulled back per tick


def _splitmix(values: np.ndarray) -> np.ndarray:
    """Return the splitmix64 finaliser of uint64 ``values``: well-mixed uint64 bits."""
    z = values.copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def token_uniforms(tokens: np.ndarray, seed: int, count: int) -> np.ndarray:
    """Return ``count`` uniform numbers in [0, 1) per token, a float64 array of shape (n, count).

    The numbers depend only on ``seed`` and the token, so an instrument starts in the same
    state whatever order instruments are requested in.
    """
    base = (tokens.astype(np.uint64) << np.uint64(24)) ^ np.uint64(seed & 0xFFFFFF)
    salts = np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    bits = _splitmix(base[:, None] + salts[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _price_range(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the (low, high) starting price in rupees for each segment."""
    low = np.full(segments.shape, 100.0)
    high = np.full(segments.shape, 5000.0)
    currency = (segments == 3) | (segments == 6)
    low[currency], high[currency] = 82.5, 84.5
    low[segments == INDEX_SEGMENT], high[segments == INDEX_SEGMENT] = 10_000.0, 80_000.0
    low[segments == 12], high[segments == 12] = 100.0, 1000.0
    return low, high


class Market:
    """State of every instrument the simulator was asked for, shared by all connections.

    Not thread-safe: the simulator calls it only from its event loop.
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._rows: dict[int, int] = {}
        self._count = 0
        self._state = np.zeros(0, dtype=TICK_DTYPE)
        self._tick_raw = np.zeros(0, dtype=np.float64)
        self._divisor = np.zeros(0, dtype=np.float64)
        self._subscribers = np.zeros(0, dtype=np.int32)
        self._sent = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return self._count

    @property
    def state(self) -> np.ndarray:
        """The TICK_DTYPE array of all instruments, one row each; a view, valid until the market grows."""
        return self._state[: self._count]

    @property
    def subscribers(self) -> np.ndarray:
        """Open subscriptions per row (int32), summed over connections; callers add and subtract."""
        return self._subscribers[: self._count]

    @property
    def packets_sent(self) -> np.ndarray:
        """Packets queued per row (int64), summed over connections; sessions add to it."""
        return self._sent[: self._count]

    def row(self, token: int) -> int | None:
        """Return the row of ``token``, or None if no connection has requested it yet."""
        return self._rows.get(token)

    def rows_for(self, tokens: list[int]) -> np.ndarray:
        """Return the int64 rows of ``tokens`` (unsigned 32-bit ints), creating missing instruments."""
        missing = [token for token in dict.fromkeys(tokens) if token not in self._rows]
        if missing:
            self._create(np.array(missing, dtype=np.uint32))
        return np.array([self._rows[token] for token in tokens], dtype=np.int64)

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * len(self._state), 1024)
        self._state = np.resize(self._state, capacity)
        self._tick_raw = np.resize(self._tick_raw, capacity)
        self._divisor = np.resize(self._divisor, capacity)
        self._subscribers = _grown(self._subscribers, self._count, capacity)
        self._sent = _grown(self._sent, self._count, capacity)

    def _create(self, tokens: np.ndarray) -> None:
        """Add rows for new ``tokens`` in a plausible start-of-session state."""
        start, n = self._count, len(tokens)
        if start + n > len(self._state):
            self._grow(start + n)
        rows = np.arange(start, start + n)
        for offset, token in enumerate(tokens.tolist()):
            self._rows[token] = start + offset
        self._count += n

        segments = (tokens & 0xFF).astype(np.uint8)
        divisor = raw_divisors(segments)
        tick = np.full(n, float(_DEFAULT_TICK_RAW))
        for segment, raw in _TICK_RAW.items():
            tick[segments == segment] = raw
        self._tick_raw[rows] = tick
        self._divisor[rows] = divisor

        u = token_uniforms(tokens, self._seed, 12)
        low, high = _price_range(segments)
        close = low * np.exp(u[:, 0] * np.log(high / low))
        open_ = close * (1.0 + 0.01 * (u[:, 1] - 0.5))
        last = open_ * (1.0 + 0.01 * (u[:, 2] - 0.5))
        day_high = np.maximum(open_, last) * (1.0 + 0.003 * u[:, 3])
        day_low = np.minimum(open_, last) * (1.0 - 0.003 * u[:, 4])

        def on_grid(price: np.ndarray) -> np.ndarray:
            return np.rint(price * divisor / tick) * tick / divisor

        ticks = np.zeros(n, dtype=TICK_DTYPE)
        ticks["instrument_token"] = tokens
        ticks["segment"] = segments
        ticks["tradable"] = segments != INDEX_SEGMENT
        for name in ("recv_time", "last_trade_time"):
            ticks[name] = np.datetime64("NaT")
        ticks["close"] = on_grid(close)
        ticks["open"] = on_grid(open_)
        ticks["last_price"] = on_grid(last)
        ticks["high"] = np.maximum(on_grid(day_high), ticks["last_price"])
        ticks["low"] = np.minimum(on_grid(day_low), ticks["last_price"])
        now = np.datetime64(time.time_ns() // 1_000_000_000, "s").astype("M8[ns]")
        ticks["exchange_timestamp"] = now
        _set_change(ticks)

        tradable = segments != INDEX_SEGMENT
        trade = ticks[tradable]
        ut = u[tradable]
        trade["last_trade_time"] = now - (ut[:, 5] * 600).astype("m8[s]")
        trade["volume_traded"] = (ut[:, 6] * 2_000_000).astype(np.uint32)
        trade["last_traded_quantity"] = 1 + (ut[:, 7] * 100).astype(np.uint32)
        mid = (trade["open"] + trade["high"] + trade["low"] + trade["last_price"]) / 4
        trade["average_traded_price"] = np.rint(mid * divisor[tradable]) / divisor[tradable]
        trade["total_buy_quantity"] = (ut[:, 8] * 500_000).astype(np.uint32)
        trade["total_sell_quantity"] = (ut[:, 9] * 500_000).astype(np.uint32)
        has_oi = np.isin(segments[tradable], _OI_SEGMENTS)
        oi = np.where(has_oi, ut[:, 10] * 5_000_000, 0).astype(np.uint32)
        trade["oi"] = oi
        trade["oi_day_high"] = (oi * (1.0 + 0.02 * ut[:, 11])).astype(np.uint32)
        trade["oi_day_low"] = (oi * (1.0 - 0.02 * ut[:, 11])).astype(np.uint32)
        ticks[tradable] = trade
        self._state[rows] = ticks
        depth_u = token_uniforms(tokens[tradable], self._seed + 1, 2 + 4 * DEPTH_LEVELS)
        self._fill_depth(rows[tradable], depth_u)

    def advance(self, rows: np.ndarray, now: np.datetime64 | None = None) -> None:
        """Move the instruments at ``rows`` (unique int64 rows) by one tick of the random walk.

        Updates last price, day high and low, trade fields, depth, open interest and both
        timestamps (``now``, whole seconds, default the current time) in one vectorised pass.
        """
        if rows.size == 0:
            return
        if now is None:
            now = np.datetime64(time.time_ns() // 1_000_000_000, "s")
        state, rng = self._state, self._rng
        tick, divisor = self._tick_raw[rows], self._divisor[rows]

        # Log-normal step with a weak pull back to the previous close, so that prices stay
        # plausible over a long run. The result is snapped to the tick grid in raw units.
        last, close = state["last_price"][rows], state["close"][rows]
        pull = -_REVERSION * np.log(last / close)
        step = np.exp(rng.normal(pull, _VOLATILITY))
        raw = np.rint(last * divisor * step / tick) * tick
        raw = np.clip(raw, tick, _U32_MAX - tick)
        last = raw / divisor
        state["last_price"][rows] = last
        state["high"][rows] = np.maximum(state["high"][rows], last)
        state["low"][rows] = np.minimum(state["low"][rows], last)
        state["exchange_timestamp"][rows] = now
        changed = state[rows]
        _set_change(changed)
        state["change"][rows] = changed["change"]
        state["net_change"][rows] = changed["net_change"]

        tradable = rows[state["tradable"][rows]]
        if tradable.size == 0:
            return
        n = tradable.size
        quantity = 1 + rng.geometric(0.05, n).astype(np.uint64)
        volume = state["volume_traded"][tradable].astype(np.uint64)
        new_volume = np.minimum(volume + quantity, _U32_MAX)
        quantity = new_volume - volume
        trade_price = state["last_price"][tradable]
        average = state["average_traded_price"][tradable]
        weighted = (average * volume + trade_price * quantity) / np.maximum(new_volume, 1)
        trade_divisor = self._divisor[tradable]
        state["average_traded_price"][tradable] = np.rint(weighted * trade_divisor) / trade_divisor
        state["volume_traded"][tradable] = new_volume
        state["last_traded_quantity"][tradable] = quantity
        state["last_trade_time"][tradable] = now
        for side in ("total_buy_quantity", "total_sell_quantity"):
            pending = state[side][tradable] * np.exp(rng.normal(0.0, 0.05, n))
            state[side][tradable] = np.clip(pending, 0, _U32_MAX).astype(np.uint32)

        oi = state["oi"][tradable].astype(np.int64)
        moves = oi > 0
        oi = np.clip(oi + moves * rng.integers(-500, 501, n), 0, _U32_MAX)
        state["oi"][tradable] = oi
        state["oi_day_high"][tradable] = np.maximum(state["oi_day_high"][tradable], oi)
        state["oi_day_low"][tradable] = np.where(moves, np.minimum(state["oi_day_low"][tradable], oi), 0)
        self._fill_depth(tradable, rng.random((n, 2 + 4 * DEPTH_LEVELS)))

    def _fill_depth(self, rows: np.ndarray, uniforms: np.ndarray) -> None:
        """Rebuild five bid and ask levels around the last price of ``rows`` (tradable only).

        ``uniforms`` is a float64 array of shape (n, 2 + 4 * DEPTH_LEVELS) of numbers in [0, 1).
        """
        n = rows.size
        if n == 0:
            return
        state = self._state
        tick, divisor = self._tick_raw[rows, None], self._divisor[rows, None]
        last_raw = np.rint(state["last_price"][rows, None] * divisor)
        levels = np.arange(DEPTH_LEVELS)[None, :]
        gaps = 1 + (uniforms[:, :2] < 0.5)
        quantities = 1 + (uniforms[:, 2 : 2 + 2 * DEPTH_LEVELS] * 5000).astype(np.int64)
        orders = 1 + (uniforms[:, 2 + 2 * DEPTH_LEVELS :] * 60).astype(np.int64)

        # Bids step down from just below the last price, asks up from just above it. A bid
        # level that would fall to zero or below is left empty (all zero), as Kite sends it.
        bid_raw = last_raw - tick * (gaps[:, :1] + levels)
        ask_raw = last_raw + tick * (gaps[:, 1:] + levels)
        bid_live = bid_raw > 0
        ask_live = ask_raw <= _U32_MAX
        state["bid_price"][rows] = np.where(bid_live, bid_raw / divisor, 0.0)
        state["ask_price"][rows] = np.where(ask_live, ask_raw / divisor, 0.0)
        state["bid_quantity"][rows] = np.where(bid_live, quantities[:, :DEPTH_LEVELS], 0)
        state["ask_quantity"][rows] = np.where(ask_live, quantities[:, DEPTH_LEVELS:], 0)
        state["bid_orders"][rows] = np.where(bid_live, orders[:, :DEPTH_LEVELS], 0)
        state["ask_orders"][rows] = np.where(ask_live, orders[:, DEPTH_LEVELS:], 0)


def _grown(values: np.ndarray, count: int, capacity: int) -> np.ndarray:
    """Return a zeroed array of ``capacity`` entries that starts with ``values[:count]``."""
    grown = np.zeros(capacity, dtype=values.dtype)
    grown[:count] = values[:count]
    return grown


def _set_change(ticks: np.ndarray) -> None:
    """Fill ``change`` (percent against close, 0 when close is 0) and ``net_change`` in place."""
    close = ticks["close"]
    difference = ticks["last_price"] - close
    ticks["net_change"] = difference
    with np.errstate(divide="ignore", invalid="ignore"):
        ticks["change"] = np.where(close == 0, 0.0, difference * 100.0 / close)
