"""The feed survives network and server faults injected by the simulator."""

from __future__ import annotations


import numpy as np
import pytest

from kitefeed import Mode, ReconnectPolicy
from kitefeed.engine import Feed
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, read_until, wait_for
from .test_feed import read_after_markers, seen

EQUITIES = [((8000 + n) << 8) | 1 for n in range(40)]
INDICES = [((900 + n) << 8) | 9 for n in range(6)]
TOKENS = EQUITIES + INDICES


def connection_states(feed: Feed, key_index: int) -> list[str]:
    return [connection.state for connection in feed.stats().keys[key_index].connections]


def server_modes(sim: Simulator, api_key: str) -> dict[int, Mode]:
    """Return the instrument modes as the server stores them, over all open connections of ``api_key``."""
    modes: dict[int, Mode] = {}
    for info in sim.connections(api_key):
        modes.update(info.modes)
    return modes


def feed_modes(feed: Feed, api_key: str) -> dict[int, Mode]:
    return {token: mode for token, (key, _, mode) in feed.subscriptions().items() if key == api_key}


@pytest.fixture
def feed(sim: Simulator) -> Feed:
    with Feed(
        CREDENTIALS,
        url=sim.url,
        ring_capacity=1 << 14,
        instruments_per_connection=20,
        # Short enough for the silence test, long enough that heartbeats arriving late on
        # a loaded machine do not cause reconnects in the other tests.
        liveness_timeout=2.5,
        reconnect=ReconnectPolicy(base=0.05, cap=0.5, too_many_requests_delay=0.5),
    ) as running:
        running.subscribe(EQUITIES[:10], "ltp")
        running.subscribe(EQUITIES[10:30], "full")
        running.subscribe(EQUITIES[30:] + INDICES, "quote")
        running.set_mode(INDICES[:3], "full")
        assert wait_for(lambda: running.stats().connected == 4)
        yield running


def test_abrupt_drop_restores_instruments_and_modes(feed: Feed, sim: Simulator) -> None:
    before = feed.stats()
    assert sim.drop_connections("key_a", abrupt=True) == 2

    assert wait_for(
        lambda: [c.connects for c in feed.stats().keys[0].connections[:2]] == [2, 2]
        and server_modes(sim, "key_a") == feed_modes(feed, "key_a")
    )
    after = feed.stats()
    with feed.open_reader(start="newest") as reader:
        records = read_after_markers(feed, reader, seen(TOKENS))

    assert [c.connects for c in after.keys[0].connections[:2]] == [2, 2]
    # The other key's connections were not disturbed.
    assert [c.connects for c in after.keys[1].connections] == [c.connects for c in before.keys[1].connections]
    modes = feed.subscriptions()
    for token in TOKENS:
        rows = records[records["instrument_token"] == token]
        assert set(rows["mode"].tolist()) == {int(modes[token][2])}, token


def test_silent_server_is_detected_without_pings(feed: Feed, sim: Simulator) -> None:
    sim.silence("key_b", answer_pings=False)
    assert wait_for(lambda: any(state != "connected" for state in connection_states(feed, 1)[:2]))
    sim.silence("key_b", enabled=False)
    assert wait_for(lambda: feed.stats().keys[1].connected == 2)
    events = [event for event in feed.poll_events() if event.kind == "connection" and event.api_key == "key_b"]

    assert any("no message for more than 2.5 s" in event.detail for event in events)
    assert feed.stats().keys[0].connections[0].connects == 1


def test_too_many_requests_backs_off_longer(feed: Feed, sim: Simulator) -> None:
    sim.reject_handshakes("key_a", 429, count=2)
    sim.drop_connections("key_a", abrupt=True)
    # Connected again only after both rejections, so the backoff events are in by then.
    assert wait_for(lambda: sim.stats().handshakes["key_a"].rejected == 2)
    assert wait_for(lambda: feed.stats().keys[0].connected == 2)
    events = [event for event in feed.poll_events() if event.kind == "connection" and event.data == "backoff"]
    stats = sim.stats()

    rejected = [event for event in events if "HTTP 429" in event.detail]
    assert len(rejected) == 2, [event.detail for event in events]
    delays = [float(event.detail.rsplit("retrying in ", 1)[1].split(" s")[0]) for event in rejected]
    assert all(delay >= 0.5 for delay in delays), delays
    assert stats.max_concurrent["key_a"] <= 3, stats


def test_connections_never_exceed_three(feed: Feed, sim: Simulator) -> None:
    for round_number in range(2, 7):
        sim.drop_connections("key_b", abrupt=False)
        assert wait_for(lambda: [c.connects for c in feed.stats().keys[1].connections[:2]] == [round_number] * 2)
    assert sim.stats().max_concurrent["key_b"] <= 3


def test_large_frame_in_small_writes_and_fragments(sim: Simulator) -> None:
    tokens = [((30_000 + n) << 8) | 2 for n in range(3000)]
    with Feed({"key_a": CREDENTIALS["key_a"]}, url=sim.url, ring_capacity=1 << 14) as feed:
        feed.subscribe(tokens, "full")
        with feed.open_reader() as reader:
            read_until(reader, lambda r: np.isin(tokens, r["instrument_token"]).all())
            frames_before = feed.stats().frames

            for fault in ("slow_writes", "fragment_messages"):
                if fault == "slow_writes":
                    sim.slow_writes("key_a", 4096)
                else:
                    sim.fragment_messages("key_a", 1024)
                before = feed.stats().ticks
                assert sim.send_snapshot("key_a") == 3000
                assert wait_for(lambda: feed.stats().ticks >= before + 3000)
                sim.clear_faults()
        stats = feed.stats()

    assert stats.parse_errors == 0
    assert stats.frames > frames_before
    assert stats.keys[0].connections[0].connects == 1


@pytest.mark.parametrize("kind", ["truncated", "unknown_length", "count_exceeds_data", "short_packet", "empty_packet"])
def test_damaged_messages_are_counted_and_skipped(feed: Feed, sim: Simulator, kind: str) -> None:
    with feed.open_reader(start="newest") as reader:
        # One damaged message per connection of key_a. A simulator that lags on a busy
        # machine may drop one from a full queue (it then returns 0), so count the sent ones.
        sent = [sim.send_garbage("key_a", kind, connection_id=info.connection_id) for info in sim.connections("key_a")]
        damaged = sum(1 for good in sent if good > 0)
        assert damaged > 0
        assert wait_for(lambda: feed.stats().keys[0].parse_errors >= damaged)
        records = read_after_markers(feed, reader, seen(EQUITIES[:5]))
    stats = feed.stats()

    assert len(sent) == 2
    assert stats.keys[0].parse_errors == damaged
    assert stats.keys[1].parse_errors == 0
    assert stats.keys[0].worker_alive
    assert stats.keys[0].worker_restarts == 0
    assert len(records)


def test_token_expiry_at_run_time(feed: Feed, sim: Simulator) -> None:
    sim.set_token("key_a", "renewed-token")
    sim.drop_connections("key_a", abrupt=True)
    assert wait_for(lambda: feed.stats().keys[0].state == "auth_failed")
    assert wait_for(lambda: sum(feed.distribution()["key_a"]) == 0)

    feed.set_access_token("key_a", "renewed-token")
    assert wait_for(lambda: feed.stats().keys[0].connected == 2)
    assert sum(feed.distribution()["key_a"]) == 23


def test_gives_up_after_max_attempts(sim: Simulator) -> None:
    policy = ReconnectPolicy(base=0.01, cap=0.05, max_attempts=3)
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1024, reconnect=policy) as feed:
        sim.reject_handshakes("key_a", 503)
        feed.subscribe([256265], key="key_a")
        assert wait_for(lambda: connection_states(feed, 0)[0] == "failed")
        handshakes = sim.stats().handshakes["key_a"]
        sim.clear_faults()
        events = [event for event in feed.poll_events() if event.data == "failed"]

    assert handshakes.rejected == 4  # the first attempt and three retries
    assert "gave up after 3 attempts" in events[0].detail
