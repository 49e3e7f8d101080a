"""Fixtures for engine tests: a simulator on 127.0.0.1 and helpers that read a feed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from kitefeed.engine import FeedReader
from kitefeed.sim import Simulator

from ..support import PID, wait_for
from ..support import own_segments as segments_with_prefix

CREDENTIALS = {"key_a": "token-a-3f9c1e", "key_b": "token-b-77d2aa"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(CREDENTIALS, tick_interval=0.05, seed=7) as simulator:
        yield simulator


def own_segments() -> set[str]:
    """Segments of feeds this test process made: every feed name in the tests starts with its pid."""
    return segments_with_prefix(f"kitefeed-{PID}.")


@pytest.fixture(autouse=True)
def no_segments_left() -> Iterator[None]:
    before = own_segments()
    yield
    left = own_segments() - before
    assert not left, f"shared-memory segments left behind: {sorted(left)}"


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
