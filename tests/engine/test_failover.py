"""A key whose token is rejected hands its instruments to other keys, and gets them back."""

from __future__ import annotations

from kitefeed.engine import Feed
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, wait_for
from .test_feed import read_after_markers, seen

TOKENS = [((6000 + n) << 8) | 1 for n in range(12)]


def keys_of(feed: Feed, tokens: list[int]) -> set[str]:
    subscriptions = feed.subscriptions()
    return {subscriptions[token][0] for token in tokens}


def test_rejected_key_fails_over_and_recovers(sim: Simulator) -> None:
    bad = {"key_a": "expired-token", "key_b": CREDENTIALS["key_b"]}
    with Feed(bad, url=sim.url, ring_capacity=1 << 12) as feed:
        feed.subscribe(TOKENS, "full")
        on_a = [token for token in TOKENS if feed.subscriptions()[token][0] == "key_a"]
        assert len(on_a) == 6

        # Failover moves key_a's instruments to key_b, which streams them.
        assert wait_for(lambda: keys_of(feed, on_a) == {"key_b"})
        stats = feed.stats()
        with feed.open_reader(start="newest") as reader:
            moved = read_after_markers(feed, reader, seen(on_a), keys=["key_b"])

        # A new token brings them back to key_a.
        feed.set_access_token("key_a", CREDENTIALS["key_a"])
        back = keys_of(feed, on_a)
        with feed.open_reader(start="newest") as reader:
            returned = read_after_markers(feed, reader, seen(on_a))
        final = feed.stats()
        events = feed.poll_events()

    assert stats.keys[0].state == "auth_failed"
    assert stats.keys[0].instruments == 0
    assert stats.keys[1].instruments == len(TOKENS)
    assert set(moved["key_index"][moved["instrument_token"] == on_a[0]].tolist()) == {1}
    assert set(moved["mode"][[token in on_a for token in moved["instrument_token"]]].tolist()) == {3}

    assert back == {"key_a"}
    assert set(returned["key_index"][returned["instrument_token"] == on_a[0]].tolist()) == {0}
    assert final.keys[0].state == "running"

    failovers = [event for event in events if event.kind == "failover"]
    assert [event.data for event in failovers] == [6, -6]
    assert all(event.api_key == "key_a" for event in failovers)


def test_failover_disabled_keeps_instruments(sim: Simulator) -> None:
    bad = {"key_a": "expired-token", "key_b": CREDENTIALS["key_b"]}
    with Feed(bad, url=sim.url, ring_capacity=1024, failover=False) as feed:
        feed.subscribe(TOKENS)
        assert wait_for(lambda: feed.stats().keys[0].state == "auth_failed")
        distribution = feed.distribution()
        events = feed.poll_events()
    assert distribution == {"key_a": [6, 0, 0], "key_b": [6, 0, 0]}
    assert not [event for event in events if event.kind == "failover"]


def test_failover_limited_by_room(sim: Simulator) -> None:
    bad = {"key_a": "expired-token", "key_b": CREDENTIALS["key_b"]}
    with Feed(bad, url=sim.url, ring_capacity=1024, instruments_per_connection=3) as feed:
        feed.subscribe(TOKENS[:8], key="key_a")
        feed.subscribe(TOKENS[8:], key="key_b")
        assert wait_for(lambda: sum(feed.distribution()["key_b"]) == 9)
        distribution = feed.distribution()
        events = [event for event in feed.poll_events() if event.kind == "failover"]
    assert sum(distribution["key_a"]) == 3
    assert distribution["key_b"] == [3, 3, 3]
    assert events[0].data == 5
    assert "3 stay on this key" in events[0].detail
