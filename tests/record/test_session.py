"""A simulator session recorded from a feed, replayed into rings and read back like a live feed."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import kitefeed
from kitefeed import Decoder, FeedStateError, Mode
from kitefeed.engine import Feed
from kitefeed.record import (
    JournalWriter,
    ReplayFeed,
    TickFileWriter,
    decode_journal,
    load_recording,
    read_ticks,
    record_feed,
)
from kitefeed.record.capture import capture_messages
from kitefeed.sim import Simulator

from .conftest import assert_ticks_equal

CREDENTIALS = {"key_a": "token-a-5e1f0b", "key_b": "token-b-c4d219"}
TOKENS = [((6000 + n) << 8) | 1 for n in range(300)] + [((800 + n) << 8) | 9 for n in range(20)]
_names = itertools.count()


def feed_name(label: str) -> str:
    return f"{os.getpid()}.{label}{next(_names)}"


def read_all(reader: kitefeed.FeedReader, timeout: float = 30.0) -> np.ndarray:
    """Copy every batch until the reader's feed has stopped and is drained; fail after ``timeout``."""
    batches = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = reader.read(timeout=0.2)
        if len(batch):
            # The view keeps the aligned layout, which np.concatenate drops from a ring's dtype.
            batches.append(batch.view(kitefeed.TICK_DTYPE).copy())
            assert reader.intact()
        elif reader.closed:
            return np.concatenate(batches) if batches else np.empty(0, dtype=kitefeed.TICK_DTYPE)
    pytest.fail(f"reader did not reach the end of the feed within {timeout} s")


def by_key(ticks: np.ndarray, key_index: int) -> np.ndarray:
    return ticks[ticks["key_index"] == key_index]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], np.ndarray, list[str]]:
    """Record a two-key feed of the simulator to Parquet; return the files, what a live reader read, and the keys."""
    tmp_path = tmp_path_factory.mktemp("recorded")
    with Simulator(CREDENTIALS, tick_interval=0.05, seed=3) as sim:
        feed = Feed(CREDENTIALS, url=sim.url, ring_capacity=1 << 14, name=feed_name("rec"))
        with feed:
            recorder_reader = kitefeed.open_reader(feed.name, wait="block")
            live_reader = kitefeed.open_reader(feed.name)
            writer = TickFileWriter(tmp_path, metadata={"feed": feed.name, "api_keys": feed.keys}, row_group_rows=256)
            outcome = {}
            recorder = threading.Thread(target=lambda: outcome.update(stats=record_feed(recorder_reader, writer)))
            recorder.start()
            feed.subscribe(TOKENS, "full")

            live = []
            deadline = time.monotonic() + 20
            while sum(map(len, live)) < 2000 and time.monotonic() < deadline:
                batch = live_reader.read(timeout=0.2)
                live.append(batch.view(kitefeed.TICK_DTYPE).copy())
            keys = feed.keys
        # The feed has stopped: both readers drain what is left and see the end.
        live.append(read_all(live_reader))
        recorder.join(timeout=30)
        live_reader.close()
        recorder_reader.close()

    assert not recorder.is_alive()
    stats = outcome["stats"]
    assert stats.lost == 0
    assert stats.ticks >= 2000
    return writer.files, np.concatenate(live), keys


def test_recorded_ticks_equal_live_ticks(recorded: tuple[list[Path], np.ndarray, list[str]]) -> None:
    files, live, _ = recorded

    ticks = read_ticks(files)

    assert len(ticks) == len(live)
    for key_index in (0, 1):
        assert_ticks_equal(by_key(ticks, key_index), by_key(live, key_index))


def test_replay_reads_like_live_feed(recorded: tuple[list[Path], np.ndarray, list[str]]) -> None:
    files, live, keys = recorded
    recording = load_recording(files)
    name = feed_name("replay")

    with ReplayFeed(name, recording.api_keys, ring_capacity=1 << 14) as replay:
        assert kitefeed.engine.reader.feed_keys(name) == keys
        with kitefeed.open_reader(name, wait="block") as reader:
            stats = replay.run(recording.ticks, speed=None)
            replayed = read_all(reader)
            lost = reader.stats().lost

    assert lost == 0
    assert stats.records == len(live)
    assert recording.api_keys == keys
    for key_index in (0, 1):
        assert_ticks_equal(by_key(replayed, key_index), by_key(live, key_index))


def test_replay_at_recorded_pace_keeps_order(recorded: tuple[list[Path], np.ndarray, list[str]]) -> None:
    files, live, _ = recorded
    recording = load_recording(files)
    name = feed_name("pace")

    with ReplayFeed(name, recording.api_keys, ring_capacity=1 << 14) as replay:
        with kitefeed.open_reader(name, keys=[recording.api_keys[0]], wait="block") as reader:
            # 20 times the recorded pace keeps this test short; the schedule tests check the pace itself.
            stats = replay.run(recording.ticks, speed=20.0, max_gap_seconds=0.5)
            replayed = read_all(reader)

    assert stats.batches > 1
    assert_ticks_equal(replayed, by_key(live, 0))
    assert (np.diff(replayed["recv_time"].view(np.int64)) >= 0).all()


def test_replay_name_in_use_rejected() -> None:
    name = feed_name("busy")
    with ReplayFeed(name, ["key_a"], ring_capacity=1024):
        with pytest.raises(FeedStateError, match="already has shared memory"):
            ReplayFeed(name, ["key_a"], ring_capacity=1024)


def test_replay_removes_segments_after_exception() -> None:
    name = feed_name("error")
    ticks = np.zeros(3, dtype=kitefeed.TICK_DTYPE)
    ticks["key_index"] = 5  # no ring for key 5

    with pytest.raises(kitefeed.InvalidRequestError, match="key_index 5"):
        with ReplayFeed(name, ["key_a"], ring_capacity=1024) as replay:
            replay.run(ticks)

    assert not [segment for segment in os.listdir("/dev/shm") if segment.startswith(f"kitefeed-{name}-")]


def test_journal_of_simulator_decodes_to_recorded_ticks(tmp_path: Path) -> None:
    decoder = Decoder()
    api_key, token = next(iter(CREDENTIALS.items()))
    with JournalWriter(tmp_path, metadata={"feed": "sim", "api_keys": [api_key]}) as journal:
        with TickFileWriter(tmp_path) as writer:

            def on_message(recv_time_ns: int, key_index: int, connection: int, payload: bytes, is_text: bool) -> None:
                journal.append(recv_time_ns, key_index, connection, payload, is_text)
                if not is_text:
                    writer.write(decoder.decode(payload, recv_time_ns))

            with Simulator(CREDENTIALS, tick_interval=0.05, seed=5) as sim:
                tokens = {Mode.FULL: TOKENS[:20], Mode.LTP: TOKENS[20:30], Mode.QUOTE: TOKENS[30:]}
                received = asyncio.run(capture_messages(sim.url, api_key, token, tokens, on_message, seconds=1.5))

    ticks, stats = decode_journal(journal.files)

    assert received == stats.journal.messages
    assert stats.journal.damaged_tails == 0
    assert len(ticks) > 0
    assert_ticks_equal(ticks, read_ticks(writer.files))
    assert_ticks_equal(load_recording(journal.files).ticks, ticks)
