"""With journal_dir, workers keep every raw message, from which the ticks decode again."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kitefeed.engine import Feed
from kitefeed.record.journal import read_journal
from kitefeed.record.loading import decode_journal
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, read_until, wait_for

TOKENS = [((12_000 + n) << 8) | 1 for n in range(10)]


def test_journal_decodes_to_published_ticks(sim: Simulator, tmp_path: Path) -> None:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 12, name=f"{os.getpid()}.journal", journal_dir=tmp_path) as feed:
        with feed.open_reader() as reader:
            feed.subscribe(TOKENS, "full")
            assert wait_for(lambda: feed.stats().keys[0].connected == 1)
            assert sim.send_text("key_a", {"type": "message", "data": "journal me"}) == 1
            read_until(reader, lambda r: len(r) >= 40)
            failures = [key.journal_failures for key in feed.stats().keys]
    # Stopping the feed closed the journals; the ring's records are gone with it, so the
    # comparison is with what the journal holds, decoded again.
    files = sorted(tmp_path.glob("*"))
    messages = list(read_journal(files))
    ticks, stats = decode_journal(files)

    assert {path.name.split("-key")[1][0] for path in files} == {"0", "1"}
    assert any(message.is_text and b"journal me" in message.payload for message in messages)
    assert sum(1 for message in messages if not message.is_text and len(message.payload) > 1) > 0
    assert set(np.unique(ticks["instrument_token"]).tolist()) == set(TOKENS)
    assert set(np.unique(ticks["key_index"]).tolist()) == {0, 1}
    assert len(ticks) >= 40
    assert failures == [0, 0]
