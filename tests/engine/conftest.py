"""Fixtures for engine tests: a simulator on 127.0.0.1 and helpers that read a feed."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from kitefeed.engine import FeedReader
from kitefeed.sim import Simulator

CREDENTIALS = {"key_a": "token-a-3f9c1e", "key_b": "token-b-77d2aa"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(CREDENTIALS, tick_interval=0.05, seed=7) as simulator:
        yield simulator


def own_segments() -> set[str]:
    """Segments of feeds this test process made: every feed name in the tests starts with its pid."""
    prefix = f"kitefeed-{os.getpid()}."
    return {name for name in os.listdir("/dev/shm") if name.startswith(prefix)}


@pytest.fixture(autouse=True)
def no_segments_left() -> Iterator[None]:
    before = own_segments()
    yield
    left = own_segments() - before
    assert not left, f"shared-memory segments left behind: {sorted(left)}"


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` every 50 ms until it is true; return False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def read_until(
    reader: FeedReader,
    done: Callable[[np.ndarray], bool],
    *,
    timeout: float = 20.0,
) -> np.ndarray:
    """Copy batches from ``reader`` until ``done(all records so far)`` is true; fail after ``timeout`` s."""
    batches: list[np.ndarray] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = reader.read(timeout=0.2)
        if len(batch):
            batches.append(batch.copy())
            records = np.concatenate(batches)
            if done(records):
                return records
    records = np.concatenate(batches) if batches else np.empty(0)
    pytest.fail(f"condition not met within {timeout} s; {len(records)} records read")
