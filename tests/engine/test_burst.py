"""A burst at market open: both keys filled to Kite's limit in one request."""

from __future__ import annotations

import numpy as np

from kitefeed.engine import Feed
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, read_until

TOKENS = [((20_000 + n) << 8) | (1 if n % 10 else 9) for n in range(18_000)]


def test_full_capacity_in_one_request(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 16) as feed:
        with feed.open_reader() as reader:
            feed.subscribe(TOKENS, "ltp")
            wanted = np.array(sorted(TOKENS), dtype=np.uint32)
            records = read_until(reader, lambda r: np.isin(wanted, r["instrument_token"]).all(), timeout=30)
            lost = reader.stats().lost
        stats = feed.stats()
        events = feed.poll_events()
        server_side = sim.connections()

    assert feed.distribution() == {"key_a": [3000, 3000, 3000], "key_b": [3000, 3000, 3000]}
    assert stats.connected == 6
    assert stats.parse_errors == 0
    assert lost == 0
    assert len(np.unique(records["instrument_token"])) == 18_000
    assert not [event for event in events if event.kind == "error"]
    assert len(server_side) == 6
    assert {len(info.modes) for info in server_side} == {3000}
