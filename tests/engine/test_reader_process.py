"""A reader in another process attaches to a running feed by its name."""

from __future__ import annotations

import os

import multiprocessing

import numpy as np
import pytest

from kitefeed import InvalidRequestError, RingError
from kitefeed.engine import Feed, open_reader
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS
from .processes import read_feed_in_child

TOKENS = [((3000 + n) << 8) | 2 for n in range(30)]

PID = os.getpid()
"""Fixed feed names start with the test process id, so parallel runs cannot collide."""


def test_reader_attaches_by_name_from_other_process(sim: Simulator) -> None:
    context = multiprocessing.get_context("spawn")
    with Feed(CREDENTIALS, url=sim.url, name=f"{PID}.attach", ring_capacity=1 << 12) as feed:
        feed.subscribe(TOKENS, "full")
        parent_end, child_end = context.Pipe(duplex=False)
        child = context.Process(target=read_feed_in_child, args=(feed.name, TOKENS, child_end))
        child.start()
        child_end.close()
        try:
            assert parent_end.poll(30), "reader process sent nothing within 30 s"
            data, descr, writeable, lost, keys = parent_end.recv()
        finally:
            child.join(10)
            parent_end.close()
        where = feed.subscriptions()

    assert child.exitcode == 0
    assert keys == ["key_a", "key_b"]
    assert not writeable
    assert lost == 0
    records = np.frombuffer(data, dtype=np.dtype([tuple(field) for field in descr]))
    assert set(records["instrument_token"].tolist()) >= set(TOKENS)
    for row in records:
        api_key, connection, _ = where[int(row["instrument_token"])]
        assert feed.keys[row["key_index"]] == api_key
        assert row["connection_index"] == connection


def test_open_reader_of_unknown_feed_fails() -> None:
    with pytest.raises(RingError, match="no feed named 'missing.feed' is running"):
        open_reader("missing.feed")


def test_reader_iteration_ends_when_feed_stops(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12) as feed:
        reader = feed.open_reader()
        feed.subscribe(TOKENS)
        first = reader.read(timeout=20)
        assert len(first)
    # The feed has stopped: iteration drains what is left and ends by itself.
    total = len(first) + sum(len(batch) for batch in reader)
    stats = reader.stats()
    reader.close()
    assert total == stats.read
    assert stats.read + stats.lost == sum(ring.published for ring in stats.rings)


def test_reader_of_one_key(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12) as feed:
        feed.subscribe(TOKENS)
        on_key_b = {token for token, (api_key, _, _) in feed.subscriptions().items() if api_key == "key_b"}
        with feed.open_reader(keys=["key_b"]) as reader:
            records = []
            while not on_key_b <= {int(token) for batch in records for token in batch["instrument_token"]}:
                batch = reader.read(timeout=15)
                assert len(batch), "no ticks within 15 s"
                records.append(batch.copy())
            assert reader.keys == ["key_b"]
        with pytest.raises(InvalidRequestError, match="feed '.*' has the keys \\['key_a', 'key_b'\\]"):
            feed.open_reader(keys=["key_c"])

    merged = np.concatenate(records)
    assert set(merged["key_index"].tolist()) == {1}
    assert set(merged["instrument_token"].tolist()) == on_key_b


def test_reader_async_iteration(sim: Simulator) -> None:
    import asyncio

    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12) as feed:
        feed.subscribe(TOKENS)

        async def collect() -> set[int]:
            seen_tokens: set[int] = set()
            with feed.open_reader(wait="block") as reader:
                async for batch in reader:
                    seen_tokens.update(batch["instrument_token"].tolist())
                    if seen_tokens >= set(TOKENS):
                        break
            return seen_tokens

        seen_tokens = asyncio.run(asyncio.wait_for(collect(), 20))
    assert seen_tokens >= set(TOKENS)


def test_blocking_reader_sleeps_on_doorbell(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12) as feed:
        with feed.open_reader(wait="block") as reader:
            assert reader._group.blocks_on_one_futex
            feed.subscribe(TOKENS)
            batch = reader.read(timeout=15)
    assert len(batch)
