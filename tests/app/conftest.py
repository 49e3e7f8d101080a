"""A simulator on 127.0.0.1 for the application-level tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kitefeed.sim import Simulator

CREDENTIALS = {"key_a": "token-a-3f9c1e", "key_b": "token-b-77d2aa"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(CREDENTIALS, tick_interval=0.05, seed=3) as simulator:
        yield simulator
