"""The feed behaves the same on both WebSocket transports."""

from __future__ import annotations

import numpy as np
import pytest

from kitefeed import ReconnectPolicy
from kitefeed.engine import Feed
from kitefeed.engine.transport import TRANSPORTS
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, read_until, wait_for

TOKENS = [((8000 + n) << 8) | 1 for n in range(20)]
SNAPSHOT_TOKENS = [((30_000 + n) << 8) | 2 for n in range(3000)]


def open_feed(sim: Simulator, transport: str, credentials: dict[str, str] = CREDENTIALS) -> Feed:
    return Feed(
        credentials,
        url=sim.url,
        ring_capacity=1 << 14,
        liveness_timeout=2.0,
        reconnect=ReconnectPolicy(base=0.05, cap=0.5),
        transport=transport,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ticks_arrive_and_survive_drop(sim: Simulator, transport: str) -> None:
    with open_feed(sim, transport) as feed:
        feed.subscribe(TOKENS, "full")
        assert wait_for(lambda: feed.stats().connected == 2)
        with feed.open_reader() as reader:
            # Until the mode request arrives, the server sends quote packets.
            records = read_until(reader, lambda r: np.isin(TOKENS, r["instrument_token"][r["mode"] == 3]).all())
            assert len(records)

            ticks_before = feed.stats().ticks
            assert sim.drop_connections(abrupt=True) == 2
            assert wait_for(lambda: feed.stats().connected == 2 and min(
                connection.connects for key in feed.stats().keys for connection in key.connections[:1]
            ) == 2)
            # The server sends a snapshot of every instrument after the restored subscription.
            assert wait_for(lambda: feed.stats().ticks >= ticks_before + len(TOKENS))
            after = read_until(reader, lambda r: np.isin(TOKENS, r["instrument_token"]).all())
        stats = feed.stats()

    assert len(after)
    assert stats.parse_errors == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_rejected_token_is_auth_failed(sim: Simulator, transport: str) -> None:
    with open_feed(sim, transport, {"key_a": "wrong-token"}) as feed:
        feed.subscribe(TOKENS[:3], key="key_a")
        assert wait_for(lambda: feed.stats().keys[0].state == "auth_failed")
        events = [event for event in feed.poll_events() if event.kind == "connection"]

    assert any("HTTP 403" in event.detail for event in events)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_large_fragmented_snapshot(sim: Simulator, transport: str) -> None:
    with open_feed(sim, transport, {"key_a": CREDENTIALS["key_a"]}) as feed:
        feed.subscribe(SNAPSHOT_TOKENS, "full")
        with feed.open_reader() as reader:
            read_until(reader, lambda r: np.isin(SNAPSHOT_TOKENS, r["instrument_token"]).all())

            sim.fragment_messages("key_a", 1024)
            before = feed.stats().ticks
            assert sim.send_snapshot("key_a") == len(SNAPSHOT_TOKENS)
            assert wait_for(lambda: feed.stats().ticks >= before + len(SNAPSHOT_TOKENS))
        stats = feed.stats()

    assert stats.parse_errors == 0
    assert stats.keys[0].connections[0].connects == 1
