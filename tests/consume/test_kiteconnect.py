"""The KiteTicker-shaped adapter: tick dicts, subscriptions and feed events."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import orjson
import pytest

from kitefeed import TICK_DTYPE, Feed, FeedStateError, InvalidRequestError, to_kiteconnect
from kitefeed.consume import KiteTickerAdapter, iter_kiteconnect
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, EQUITIES, PID, TOKENS, wait_for


class Recorder:
    """Callbacks of a KiteTickerAdapter that keep what they receive."""

    def __init__(self, adapter: KiteTickerAdapter) -> None:
        self.lock = threading.Lock()
        self.ticks: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.errors: list[tuple[int, str]] = []
        self.closed: list[tuple[Any, str]] = []
        self.connected = 0
        adapter.on_ticks = self.on_ticks
        adapter.on_connect = self.on_connect
        adapter.on_close = self.on_close
        adapter.on_order_update = self.on_order_update
        adapter.on_error = self.on_error

    def on_ticks(self, ws: KiteTickerAdapter, ticks: list[dict[str, Any]]) -> None:
        with self.lock:
            self.ticks.extend(ticks)

    def on_connect(self, ws: KiteTickerAdapter, response: None) -> None:
        self.connected += 1

    def on_close(self, ws: KiteTickerAdapter, code: Any, reason: str) -> None:
        self.closed.append((code, reason))

    def on_order_update(self, ws: KiteTickerAdapter, data: dict[str, Any]) -> None:
        self.orders.append(data)

    def on_error(self, ws: KiteTickerAdapter, code: int, reason: str) -> None:
        self.errors.append((code, reason))

    def tokens(self) -> set[int]:
        with self.lock:
            return {tick["instrument_token"] for tick in self.ticks}


def test_adapter_output_equals_to_kiteconnect(sim: Simulator) -> None:
    # Two readers from the oldest record see the same records, so the adapter's dicts
    # must equal to_kiteconnect of the other reader's records.
    with Feed(CREDENTIALS, url=sim.url, name=f"{PID}.same", ring_capacity=1 << 14) as feed:
        plain = feed.open_reader()
        adapter = KiteTickerAdapter(feed, start="oldest")
        recorder = Recorder(adapter)
        adapter.on_connect = lambda ws, response: ws.subscribe(TOKENS)
        adapter.connect(threaded=True)
        assert wait_for(lambda: recorder.tokens() >= set(TOKENS))
    adapter.close()
    # Without dtype=, concatenating ring batches returns a packed dtype that to_kiteconnect rejects.
    records = np.concatenate([batch.copy() for batch in plain], dtype=TICK_DTYPE)
    plain.close()

    assert recorder.closed == [(None, "the feed stopped")]
    assert len(recorder.ticks) == len(records)
    # orjson keeps key order and writes datetimes as ISO strings, so equal bytes mean equal dicts.
    # The two readers may interleave the keys' rings differently, so the order is not compared.
    expected = sorted(orjson.dumps(tick) for tick in to_kiteconnect(records))
    assert sorted(orjson.dumps(tick) for tick in recorder.ticks) == expected


def test_adapter_subscribe_and_set_mode(feed: Feed) -> None:
    adapter = KiteTickerAdapter(feed)
    recorder = Recorder(adapter)

    def on_connect(ws: KiteTickerAdapter, response: None) -> None:
        ws.subscribe(EQUITIES)
        ws.set_mode(ws.MODE_FULL, EQUITIES[:5])

    adapter.on_connect = on_connect
    adapter.connect(threaded=True)
    try:
        full = set(EQUITIES[:5])
        assert wait_for(lambda: recorder.tokens() >= set(EQUITIES))
        assert wait_for(lambda: {t["instrument_token"] for t in list(recorder.ticks) if t["mode"] == "full"} >= full)
        assert adapter.is_connected()
        assert adapter.stats().errors == 0
    finally:
        adapter.close()

    assert not adapter.is_connected()
    assert recorder.closed == [(None, "closed by the application")]
    modes = {token: mode for token, (_, _, mode) in feed.subscriptions().items()}
    assert {modes[token].wire_name for token in EQUITIES[:5]} == {"full"}
    assert {modes[token].wire_name for token in EQUITIES[5:]} == {"quote"}
    full_ticks = [tick for tick in recorder.ticks if tick["mode"] == "full"]
    assert all(len(tick["depth"]["buy"]) == 5 for tick in full_ticks)

    adapter.unsubscribe(EQUITIES[:5])
    assert not set(EQUITIES[:5]) & set(feed.subscriptions())


def test_adapter_dispatches_order_and_error(feed: Feed, sim: Simulator) -> None:
    adapter = KiteTickerAdapter(feed)
    recorder = Recorder(adapter)
    feed.subscribe(TOKENS[:2])
    assert wait_for(lambda: sum(key.connected for key in feed.stats().keys) >= 2)
    adapter.connect(threaded=True)
    try:
        order = {"order_id": "220101000000001", "status": "COMPLETE"}
        sim.send_text("key_a", {"type": "order", "data": order})
        sim.send_text("key_b", {"type": "error", "data": "too many instruments"})
        assert wait_for(lambda: bool(recorder.orders)), "no order update within 15 s"
        assert wait_for(lambda: bool(recorder.errors)), "no error message within 15 s"
    finally:
        adapter.close()

    assert recorder.orders == [order]
    assert recorder.errors == [(0, "too many instruments")]


def test_adapter_callback_errors_counted(feed: Feed) -> None:
    adapter = KiteTickerAdapter(feed)

    def broken(ws: KiteTickerAdapter, ticks: list[dict[str, Any]]) -> None:
        raise ValueError("strategy bug")

    adapter.on_ticks = broken
    adapter.on_connect = lambda ws, response: ws.subscribe(TOKENS)
    adapter.connect(threaded=True)
    try:
        assert wait_for(lambda: adapter.stats().errors >= 2)
        assert adapter.is_connected()
    finally:
        adapter.close()

    assert "strategy bug" in (adapter.stats().last_error or "")


def test_adapter_of_reader_cannot_subscribe(feed: Feed) -> None:
    with feed.open_reader() as reader:
        adapter = KiteTickerAdapter(reader)
        with pytest.raises(FeedStateError, match="cannot subscribe"):
            adapter.subscribe(TOKENS)
        with pytest.raises(FeedStateError, match="cannot set_mode"):
            adapter.set_mode("full", TOKENS)


def test_adapter_rejects_other_source() -> None:
    with pytest.raises(InvalidRequestError, match="expected a running kitefeed.Feed or a FeedReader"):
        KiteTickerAdapter("live")  # type: ignore[arg-type]


def test_iter_kiteconnect_yields_lists(feed: Feed) -> None:
    with feed.open_reader() as reader:
        feed.subscribe(TOKENS, "ltp")
        seen: set[int] = set()
        for count, ticks in enumerate(iter_kiteconnect(reader)):
            seen.update(tick["instrument_token"] for tick in ticks)
            assert all(list(tick)[:4] == ["tradable", "mode", "instrument_token", "last_price"] for tick in ticks)
            if seen >= set(TOKENS) or count > 2000:
                break

    assert seen >= set(TOKENS)
