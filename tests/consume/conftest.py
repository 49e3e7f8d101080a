"""Fixtures for the consumption tests: a simulator on 127.0.0.1, a running feed, and polling helpers."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator

import pytest

from kitefeed import Feed
from kitefeed.sim import Simulator

CREDENTIALS = {"key_a": "token-a-3f9c1e", "key_b": "token-b-77d2aa"}

PID = os.getpid()
"""Every feed name in these tests starts with the test process id, so parallel runs cannot collide."""

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
    prefixes = (f"kitefeed-{PID}.", f"kitefeed_latest-{PID}.")
    return {name for name in os.listdir("/dev/shm") if name.startswith(prefixes)}


@pytest.fixture(autouse=True)
def no_segments_left() -> Iterator[None]:
    before = own_segments()
    yield
    left = own_segments() - before
    assert not left, f"shared-memory segments left behind: {sorted(left)}"


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` every 20 ms until it is true; return False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
