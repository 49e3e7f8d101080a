"""Callbacks per batch from a thread and from an asyncio task, against a real feed."""

from __future__ import annotations

import asyncio
import logging
import threading

import numpy as np
import pytest

from kitefeed import Feed, InvalidRequestError
from kitefeed.consume import on_ticks, on_ticks_async
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, PID, TOKENS, wait_for


class Collector:
    """A callback that keeps the tokens it saw, and raises on every ``fail_every``-th call."""

    def __init__(self, fail_every: int = 0) -> None:
        self.lock = threading.Lock()
        self.tokens: set[int] = set()
        self.calls = 0
        self.writeable: list[bool] = []
        self.fail_every = fail_every

    def __call__(self, batch: np.ndarray) -> None:
        with self.lock:
            self.calls += 1
            self.tokens.update(batch["instrument_token"].tolist())
            self.writeable.append(batch.flags.writeable)
            calls = self.calls
        if self.fail_every and calls % self.fail_every == 0:
            raise RuntimeError(f"callback failure {calls}")

    def seen_all(self) -> bool:
        with self.lock:
            return self.tokens >= set(TOKENS)


def test_on_ticks_delivers_every_instrument(feed: Feed) -> None:
    collector = Collector()
    with feed.open_reader() as reader, on_ticks(reader, collector) as consumer:
        feed.subscribe(TOKENS, "full")
        assert wait_for(collector.seen_all), f"saw {len(collector.tokens)} of {len(TOKENS)} tokens"
        stats = consumer.stats()

    assert stats.running
    assert stats.batches >= 1
    assert stats.records >= len(TOKENS)
    assert stats.errors == 0
    assert stats.last_error is None
    assert not any(collector.writeable), "batches without copy are read-only views"


def test_on_ticks_copy_gives_writable_batches(feed: Feed) -> None:
    collector = Collector()
    with feed.open_reader() as reader, on_ticks(reader, collector, copy=True, max_records=5):
        feed.subscribe(TOKENS)
        assert wait_for(collector.seen_all)

    assert all(collector.writeable)


def test_callback_errors_counted_not_fatal(feed: Feed, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="kitefeed.consume.callbacks")
    collector = Collector(fail_every=2)
    with feed.open_reader() as reader, on_ticks(reader, collector, max_records=4) as consumer:
        feed.subscribe(TOKENS)
        assert wait_for(lambda: consumer.stats().errors >= 3 and collector.seen_all())
        stats = consumer.stats()
        assert consumer.running

    assert stats.errors >= 3
    assert stats.batches >= 2 * stats.errors - 1
    assert stats.last_error is not None and "callback failure" in stats.last_error
    assert stats.reader_error is None
    logged = [record for record in caplog.records if record.name == "kitefeed.consume.callbacks"]
    assert logged, "the first callback error is logged"
    assert logged[0].exc_info is not None
    assert len(logged) <= stats.errors


def test_consumer_ends_when_feed_stops(sim: Simulator) -> None:
    collector = Collector()
    with Feed(CREDENTIALS, url=sim.url, name=f"{PID}.ends", ring_capacity=1 << 12) as feed:
        reader = feed.open_reader()
        consumer = on_ticks(reader, collector)
        feed.subscribe(TOKENS)
        assert wait_for(collector.seen_all)

    assert consumer.join(timeout=15), "consumer did not end after the feed stopped"
    stats = consumer.stats()
    read = reader.stats().read
    reader.close()
    assert not stats.running
    assert stats.records == read


def test_stop_inside_callback(feed: Feed) -> None:
    consumers = []

    def stop_at_once(batch: np.ndarray) -> None:
        consumers[0].stop()

    with feed.open_reader() as reader:
        consumer = on_ticks(reader, stop_at_once)
        consumers.append(consumer)
        feed.subscribe(TOKENS)
        assert consumer.join(timeout=15), "consumer did not stop after stop() in its callback"
        assert consumer.stats().batches == 1


def test_on_ticks_rejects_bad_arguments(feed: Feed) -> None:
    with feed.open_reader() as reader:
        with pytest.raises(InvalidRequestError, match="expected a kitefeed.FeedReader"):
            on_ticks(object(), print)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="invalid callback"):
            on_ticks(reader, "print")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="invalid max_records 0"):
            on_ticks(reader, print, max_records=0)


def test_async_consumer_awaits_coroutine_callback(feed: Feed) -> None:
    collector = Collector(fail_every=3)

    async def callback(batch: np.ndarray) -> None:
        await asyncio.sleep(0)
        collector(batch)

    async def main() -> tuple[object, bool]:
        with feed.open_reader() as reader:
            async with on_ticks_async(reader, callback, max_records=3) as consumer:
                feed.subscribe(TOKENS)
                for _ in range(750):  # at most 15 s
                    if collector.seen_all() and consumer.stats().errors >= 2:
                        break
                    await asyncio.sleep(0.02)
                running = consumer.running
            return consumer.stats(), running

    stats, running = asyncio.run(main())

    assert running
    assert collector.seen_all()
    assert stats.errors >= 2  # type: ignore[attr-defined]
    assert not stats.running, "stats after stop()"  # type: ignore[attr-defined]
