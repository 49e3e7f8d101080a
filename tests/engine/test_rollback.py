"""A change that fails on one worker is undone on the others."""

from __future__ import annotations

import pytest

from kitefeed import Mode, WorkerError
from kitefeed.engine import Feed
from kitefeed.engine.allocation import Slot
from kitefeed.engine.steps import subscribe_step
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, wait_for

GOOD = [((13_000 + n) << 8) | 1 for n in range(5)]


def server_tokens(sim: Simulator, api_key: str) -> set[int]:
    return {token for info in sim.connections(api_key) for token in info.modes}


def test_failed_step_undoes_the_others(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024) as feed:
        feed.subscribe([256265], key="key_a")  # opens key_a's first connection
        assert wait_for(lambda: feed.stats().keys[0].connected == 1)
        supervisor = feed._supervisor
        assert supervisor is not None

        # Connection 7 does not exist, so key_b's worker rejects its step.
        steps = [subscribe_step(Slot(0, 0), GOOD, Mode.FULL), subscribe_step(Slot(1, 7), [408065], Mode.QUOTE)]
        with pytest.raises(WorkerError, match="key 'key_b'.*the request was undone on the other keys"):
            supervisor.execute(steps)

        # The server saw key_a subscribe the good tokens (it sent their state) and then
        # unsubscribe them again.
        assert wait_for(lambda: all(sim.packets_sent.get(token, 0) >= 1 for token in GOOD))
        assert wait_for(lambda: server_tokens(sim, "key_a") == {256265})
        stats = feed.stats()

    assert stats.keys[0].worker_alive
    assert stats.keys[1].worker_alive
    assert [connection.instruments for connection in stats.keys[0].connections] == [1, 0, 0]
