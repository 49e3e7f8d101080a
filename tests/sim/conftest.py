from __future__ import annotations

from collections.abc import Iterator

import pytest

from kitefeed.sim import Simulator

from .client import CREDENTIALS

SEED = 20240611


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A running simulator with fast cycles and heartbeats, so tests wait little."""
    with Simulator(CREDENTIALS, tick_interval=0.02, tick_probability=0.5, heartbeat_interval=0.1, seed=SEED) as simulator:
        yield simulator
