"""A feed of two keys against the simulator: allocation, ticks per key, unsubscribe, modes."""

from __future__ import annotations

import numpy as np
import pytest

from kitefeed import Mode, PacketKind
from kitefeed.engine import Feed
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, read_until

PER_CONNECTION = 40
EQUITIES = [((5000 + n) << 8) | 1 for n in range(150)]  # NSE, segment 1
INDICES = [((700 + n) << 8) | 9 for n in range(10)]  # segment 9
TOKENS = EQUITIES + INDICES  # 80 per key: two connections of 40 each


@pytest.fixture
def feed(sim: Simulator) -> Feed:
    with Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 14, instruments_per_connection=PER_CONNECTION) as running:
        yield running


def test_round_robin_uses_two_connections_per_key(feed: Feed) -> None:
    feed.subscribe(TOKENS)

    assert feed.keys == ["key_a", "key_b"]
    assert feed.distribution() == {"key_a": [40, 40, 0], "key_b": [40, 40, 0]}


def test_every_instrument_reaches_reader_tagged(feed: Feed, sim: Simulator) -> None:
    with feed.open_reader() as reader:
        feed.subscribe(TOKENS, "quote")
        records = read_until(reader, seen(TOKENS))

    where = feed.subscriptions()
    key_index = {api_key: index for index, api_key in enumerate(feed.keys)}
    for token in TOKENS:
        rows = records[records["instrument_token"] == token]
        api_key, connection, mode = where[token]
        assert mode is Mode.QUOTE
        assert set(rows["key_index"].tolist()) == {key_index[api_key]}, token
        assert set(rows["connection_index"].tolist()) == {connection}, token

    assert {row.connection for key in feed.stats().keys for row in key.connections if row.connected} == {0, 1}
    assert len(sim.connections("key_a")) == 2
    assert len(sim.connections("key_b")) == 2


def test_packet_kind_follows_segment_in_quote_mode(feed: Feed) -> None:
    with feed.open_reader() as reader:
        feed.subscribe(TOKENS)
        records = read_until(reader, seen(TOKENS))

    index_rows = np.isin(records["instrument_token"], INDICES)
    assert set(records["kind"][index_rows].tolist()) == {PacketKind.INDEX_QUOTE}
    assert set(records["kind"][~index_rows].tolist()) == {PacketKind.QUOTE}
    assert not records["tradable"][index_rows].any()


_marker_serial = iter(range(9_000_000, 9_100_000))


def read_after_markers(feed: Feed, reader, done=lambda records: True, keys=None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Subscribe a new marker instrument on each key (or ``keys``) and return the records after all markers.

    The server handles one connection's requests in order and sends a new instrument's
    state at once, so every request sent before the marker has taken effect by the time
    the marker's first tick arrives. Markers go to the first connection of each key.
    """
    keys = feed.keys if keys is None else keys
    markers = [(next(_marker_serial) << 8) | 1 for _ in keys]
    for marker, api_key in zip(markers, keys):
        feed.subscribe([marker], key=api_key)

    def complete(records: np.ndarray) -> bool:
        tokens = records["instrument_token"]
        if not np.isin(markers, tokens).all():
            return False
        cut = max(int(np.flatnonzero(tokens == marker)[0]) for marker in markers)
        return done(records[cut + 1 :])

    records = read_until(reader, complete)
    cut = max(int(np.flatnonzero(records["instrument_token"] == marker)[0]) for marker in markers)
    return records[cut + 1 :]


def seen(tokens: list[int]):  # type: ignore[no-untyped-def]
    """A condition for read_until: every token in ``tokens`` has at least one record."""
    wanted = set(tokens)
    return lambda records: set(records["instrument_token"].tolist()) >= wanted


def test_unsubscribe_stops_ticks(feed: Feed) -> None:
    feed.subscribe(TOKENS)
    removed = EQUITIES[:20] + INDICES[:2]
    kept = EQUITIES[20:] + INDICES[2:]
    with feed.open_reader(start="newest") as reader:
        read_until(reader, seen(removed))
        feed.unsubscribe(removed)
        # Wait until every kept instrument ticked again after the request took effect:
        # at 0.05 s cycles each instrument ticks about once a second.
        after = read_after_markers(feed, reader, seen(kept))

    assert not np.isin(after["instrument_token"], removed).any()
    assert all(token not in feed.subscriptions() for token in removed)
    assert sum(sum(counts) for counts in feed.distribution().values()) == len(kept) + 2


def test_mode_change_changes_packet_kind(feed: Feed) -> None:
    changed = EQUITIES[:10] + INDICES[:3]
    unchanged = EQUITIES[10:]
    feed.subscribe(TOKENS, Mode.LTP)
    with feed.open_reader(start="newest") as reader:
        # A new subscription starts in quote mode until the server handles the mode request.
        before = read_after_markers(feed, reader, seen(changed))
        feed.set_mode(changed, "full")
        after = read_after_markers(feed, reader, seen(changed + unchanged[:20]))

    in_before = before[np.isin(before["instrument_token"], TOKENS)]
    assert set(in_before["kind"].tolist()) == {PacketKind.LTP}

    equities = after[np.isin(after["instrument_token"], EQUITIES[:10])]
    indices = after[np.isin(after["instrument_token"], INDICES[:3])]
    others = after[np.isin(after["instrument_token"], unchanged)]
    assert set(equities["kind"].tolist()) == {PacketKind.FULL}
    assert set(indices["kind"].tolist()) == {PacketKind.INDEX_FULL}
    assert set(others["kind"].tolist()) == {PacketKind.LTP}
    assert set(after["mode"][np.isin(after["instrument_token"], changed)].tolist()) == {Mode.FULL}
    assert all(feed.subscriptions()[token][2] is Mode.FULL for token in changed)


def test_stats_count_ticks_and_ring_position(feed: Feed) -> None:
    with feed.open_reader() as reader:
        feed.subscribe(TOKENS)
        records = read_until(reader, lambda r: len(r) >= 500)
        stats = feed.stats()

    assert stats.instruments == len(TOKENS)
    assert stats.connected == 4
    assert stats.parse_errors == 0
    assert stats.ticks == stats.ring_position
    assert stats.ring_position >= len(records)
    assert stats.frames > 0
    assert stats.bytes > stats.frames
    assert stats.records_lost == 0
    for key in stats.keys:
        assert key.worker_alive
        assert key.instruments == 80
        assert key.ticks == sum(c.ticks for c in key.connections)
        assert [c.instruments for c in key.connections] == [40, 40, 0]
        assert [c.state for c in key.connections] == ["connected", "connected", "idle"]
