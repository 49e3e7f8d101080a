"""A key added to a running feed takes its share of instruments, and readers follow it."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kitefeed import InvalidRequestError
from kitefeed.engine import Feed, open_reader
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, read_until
from .test_feed import read_after_markers, seen

TOKENS = [((11_000 + n) << 8) | 1 for n in range(30)]

PID = os.getpid()
"""Fixed feed names start with the test process id, so parallel runs cannot collide."""


def test_added_key_takes_a_share(sim: Simulator) -> None:
    sim.set_token("key_c", "token-c-5a1b")
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12) as feed:
        feed.subscribe(TOKENS, "full")
        with feed.open_reader() as reader:
            feed.add_key("key_c", "token-c-5a1b")
            distribution = feed.distribution()
            on_c = [token for token, (api_key, _, _) in feed.subscriptions().items() if api_key == "key_c"]
            records = read_after_markers(feed, reader, seen(on_c))
            keys = list(reader.keys)
        stats = feed.stats()

    assert feed.keys == ["key_a", "key_b", "key_c"]
    assert {api_key: sum(counts) for api_key, counts in distribution.items()} == {"key_a": 10, "key_b": 10, "key_c": 10}
    assert keys == ["key_a", "key_b", "key_c"]
    rows = records[np.isin(records["instrument_token"], on_c)]
    assert set(rows["key_index"].tolist()) == {2}
    assert set(rows["mode"].tolist()) == {3}
    assert stats.keys[2].connected == 1
    assert stats.instruments == len(TOKENS) + 3  # with the markers


def test_add_key_without_rebalance(sim: Simulator) -> None:
    sim.set_token("key_c", "token-c-5a1b")
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024, allocation="least_loaded") as feed:
        feed.subscribe(TOKENS[:10])
        feed.add_key("key_c", "token-c-5a1b", rebalance=False)
        assert sum(feed.distribution()["key_c"]) == 0
        feed.subscribe(TOKENS[10:15])  # least loaded: all go to the new key
        assert sum(feed.distribution()["key_c"]) == 5
        assert feed.distribution()["key_a"][0] == 5
        assert feed.rebalance() == 0  # 5, 5 and 5 are balanced
        with pytest.raises(InvalidRequestError, match="already in feed"):
            feed.add_key("key_a", "anything")


def test_reader_in_other_process_follows_new_key(sim: Simulator) -> None:
    sim.set_token("key_c", "token-c-5a1b")
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12, name=f"{PID}.grow") as feed:
        feed.subscribe(TOKENS)
        with open_reader(f"{PID}.grow", start="newest") as reader:
            feed.add_key("key_c", "token-c-5a1b")
            records = read_until(reader, lambda r: bool((r["key_index"] == 2).any()))
            assert reader.keys[-1] == "key_c"
    assert (records["key_index"] == 2).any()
