"""A reader that stops reading never slows the workers: the ring overwrites and counts the loss."""

from __future__ import annotations

import time

from kitefeed.engine import Feed
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS

TOKENS = [((7000 + n) << 8) | 2 for n in range(3000)]


def test_stalled_reader_loses_counted_records(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024) as feed:
        stalled = feed.open_reader()
        feed.subscribe(TOKENS, "full")

        # The reader reads nothing while the workers publish several ring lengths.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and min(k.ring_position for k in feed.stats().keys) < 4 * 1024:
            time.sleep(0.1)
        before = feed.stats()

        received = 0
        while len(batch := stalled.read_nowait()):
            received += len(batch)
        reader_stats = stalled.stats()
        feed_stats = feed.stats()
        stalled.close()

    assert min(key.ring_position for key in before.keys) >= 4 * 1024
    assert all(key.connected == 1 for key in before.keys)
    assert reader_stats.lost > 0
    assert received == reader_stats.read
    assert received + reader_stats.lost == sum(ring.published for ring in reader_stats.rings)
    assert received <= 2 * 1024
    assert feed_stats.records_lost == reader_stats.lost
