"""Fixtures for the consumption tests: a simulator on 127.0.0.1, a running feed, and polling helpers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from kitefeed import Feed
from kitefeed.sim import Simulator

from ..support import PID
from ..support import own_segments as segments_with_prefix
from ..support import wait_for as poll

CREDENTIALS = {"key_a": "token-a-3f9c1e", "key_b": "token-b-77d2aa"}


EQUITIES = [((6000 + n) << 8) | 1 for n in range(20)]  # NSE, segment 1
INDICES = [((800 + n) << 8) | 9 for n in range(4)]  # segment 9
TOKENS = EQUITIES + INDICES


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(CREDENTIALS, tick_interval=0.05, seed=11) as simulator:
        yield simulator


@pytest.fixture
def feed(sim: Simulator, request: pytest.FixtureRequest) -> Iterator[Feed]:
    """A running two-key feed named after the test process and the test."""
    name = f"{PID}." + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:30]
    with Feed(CREDENTIALS, url=sim.url, name=name, ring_capacity=1 << 14) as running:
        yield running


def own_segments() -> set[str]:
    """Rings, doorbells and latest-tick tables of feeds this test process made."""
    return segments_with_prefix(f"kitefeed-{PID}.", f"kitefeed_latest-{PID}.")


@pytest.fixture(autouse=True)
def no_segments_left() -> Iterator[None]:
    before = own_segments()
    yield
    left = own_segments() - before
    assert not left, f"shared-memory segments left behind: {sorted(left)}"


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` every 20 ms until it is true; return False after ``timeout`` seconds."""
    return poll(condition, timeout, 0.02)
