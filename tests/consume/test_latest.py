"""The shared latest-tick table: following a feed, lookups from other processes, seqlock, cleanup."""

from __future__ import annotations

import multiprocessing
import os
import stat

import numpy as np
import pytest

from kitefeed import TICK_DTYPE, Feed, FeedStateError, InvalidRequestError, RingError
from kitefeed.consume import LatestTable, remove_stale_tables, table_name
from kitefeed.ringbuf import find_stale_segments
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS, PID, TOKENS, wait_for
from .processes import hammer_table_in_child, own_table_and_die, read_table_in_child

SEED = 424242
CONTEXT = multiprocessing.get_context("spawn")


def numbered_records(tokens: list[int], number: int) -> np.ndarray:
    """Records whose checked fields all hold ``number``, so a torn read shows as a mismatch."""
    records = np.zeros(len(tokens), dtype=TICK_DTYPE)
    records["instrument_token"] = tokens
    for name in ("last_price", "open", "volume_traded", "bid_price", "ask_quantity"):
        records[name] = number
    records["recv_time"] = np.array(number, dtype="M8[ns]")
    return records


def test_follow_keeps_last_record_per_instrument(sim: Simulator) -> None:
    with Feed(CREDENTIALS, url=sim.url, name=f"{PID}.follow", ring_capacity=1 << 14) as feed:
        reader = feed.open_reader()
        table = LatestTable.follow(feed.name)
        feed.subscribe(TOKENS, "full")
        assert wait_for(lambda: len(table) == len(TOKENS))
    # The feed has stopped: the follower drains the rings and stops; the reader has the same records.
    assert wait_for(lambda: not table.stats().following)
    records = np.concatenate([batch.copy() for batch in reader], dtype=TICK_DTYPE)
    reader.close()

    with table:
        snapshot = table.snapshot()
        stats = table.stats()
        assert snapshot["instrument_token"].tolist() == sorted(TOKENS)
        for token in TOKENS:
            last = records[records["instrument_token"] == token][-1]
            record = table.get(token)
            for name in TICK_DTYPE.names:
                # Field by field: padding bytes are not copied, and NaN must equal NaN.
                np.testing.assert_array_equal(record[name], last[name], err_msg=f"{token} {name}")
            assert table.last_price(token) == last["last_price"]
            assert table.last_update(token) == last["recv_time"]
        assert table.get(1) is None
        assert table.last_price(1) is None
        assert stats.updates <= len(records)
        assert stats.dropped == 0
        assert snapshot.flags.writeable


def test_reader_in_other_process(feed: Feed) -> None:
    feed.subscribe(TOKENS, "quote")
    with LatestTable.follow(feed.name) as table:
        parent_end, child_end = CONTEXT.Pipe(duplex=False)
        child = CONTEXT.Process(target=read_table_in_child, args=(feed.name, TOKENS, child_end))
        child.start()
        child_end.close()
        try:
            assert parent_end.poll(40), "table reader process sent nothing within 40 s"
            report = parent_end.recv()
        finally:
            child.join(10)
            parent_end.close()
        assert table.stats().following

    assert child.exitcode == 0
    assert set(report["snapshot_tokens"]) == set(TOKENS)
    assert report["found"] == sorted(TOKENS)
    assert report["tokens_match"]
    assert all(isinstance(price, float) and price > 0 for price in report["prices"])
    assert report["writeable"]
    assert report["missing"] is None


def test_concurrent_reads_never_torn() -> None:
    tokens = [((9000 + n) << 8) | 1 for n in range(64)]
    feed_name = f"{PID}.seqlock"
    with LatestTable.create(feed_name, capacity=128) as table:
        table.update(numbered_records(tokens, 1))
        parent_end, child_end = CONTEXT.Pipe(duplex=False)
        child = CONTEXT.Process(target=hammer_table_in_child, args=(feed_name, tokens, 20_000, SEED, child_end))
        child.start()
        child_end.close()
        try:
            assert parent_end.poll(30), "reader process did not attach within 30 s"
            assert parent_end.recv() == "ready"
            # Writes until the reader reports, at most 200,000 updates.
            number = 1
            while not parent_end.poll(0) and number < 200_000:
                number += 1
                table.update(numbered_records(tokens, number))
            assert parent_end.poll(30), "reader process did not finish within 30 s"
            checked, torn, newest, _ = parent_end.recv()
        finally:
            child.join(10)
            parent_end.close()
        stats = table.stats()

    assert child.exitcode == 0
    print(f"seed {SEED}: {checked} records checked against {number} updates")
    assert torn == 0
    assert checked > 20_000
    assert newest > 1, "the reader saw updates made while it read"
    assert stats.updates == len(tokens) * number


def test_update_keeps_last_of_repeated_token() -> None:
    with LatestTable.create(f"{PID}.repeat", capacity=16) as table:
        batch = numbered_records([7 << 8, 8 << 8, 7 << 8], 0)
        batch["last_price"] = [1.0, 2.0, 3.0]
        table.update(batch)

        assert table.last_price(7 << 8) == 3.0
        assert table.last_price(8 << 8) == 2.0
        assert len(table) == 2
        assert table.stats().updates == 2


def test_full_table_drops_new_instruments() -> None:
    tokens = [((100 + n) << 8) | 1 for n in range(20)]
    with LatestTable.create(f"{PID}.full", capacity=16) as table:
        table.update(numbered_records(tokens, 5))
        stats = table.stats()
        stored = table.snapshot()["instrument_token"].tolist()
        table.update(numbered_records(tokens, 6))

        assert stats.instruments == 12  # 75 % of 16 slots
        assert stats.dropped == 8
        assert len(stored) == 12
        assert all(table.last_price(token) == 6 for token in stored)
        assert table.stats().dropped == 16


def test_segment_name_mode_and_cleanup() -> None:
    feed_name = f"{PID}.mode"
    name = table_name(feed_name)
    with LatestTable.create(feed_name, capacity=16):
        info = os.stat(f"/dev/shm/{name}")
        assert stat.S_IMODE(info.st_mode) == 0o600
        # The ring cleanup never lists the table: its name is outside the rings' prefix.
        assert name not in find_stale_segments(f"kitefeed-{feed_name}")
        with pytest.raises(FeedStateError, match="already keeps the latest-tick table"):
            LatestTable.create(feed_name)
        with LatestTable.attach(feed_name) as attached:
            with pytest.raises(FeedStateError, match="attached read-only"):
                attached.update(numbered_records([1], 1))
    assert not os.path.exists(f"/dev/shm/{name}")


def test_table_of_dead_owner_is_replaced() -> None:
    feed_name = f"{PID}.dead"
    child = CONTEXT.Process(target=own_table_and_die, args=(feed_name,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    try:
        assert os.path.exists(f"/dev/shm/{table_name(feed_name)}")
        with LatestTable.create(feed_name, capacity=32) as table:
            assert table.capacity == 32
    finally:
        remove_stale_tables(table_name(feed_name))


def test_remove_stale_tables_keeps_live_ones() -> None:
    feed_name = f"{PID}.stale"
    child = CONTEXT.Process(target=own_table_and_die, args=(f"{feed_name}.gone",))
    child.start()
    child.join(30)
    with LatestTable.create(feed_name, capacity=16):
        removed = remove_stale_tables(table_name(feed_name))
        assert removed == [table_name(f"{feed_name}.gone")]
        assert os.path.exists(f"/dev/shm/{table_name(feed_name)}")


def test_attach_and_follow_errors() -> None:
    with pytest.raises(RingError, match="no latest-tick table of feed 'missing.feed'"):
        LatestTable.attach("missing.feed")
    with pytest.raises(RingError, match="no feed named 'missing.feed'"):
        LatestTable.follow("missing.feed")
    with pytest.raises(InvalidRequestError, match="invalid capacity 100"):
        LatestTable.create(f"{PID}.cap", capacity=100)
    with pytest.raises(InvalidRequestError, match="invalid feed name"):
        LatestTable.attach("no/slash")


def test_closed_table_rejects_lookups() -> None:
    table = LatestTable.create(f"{PID}.closed", capacity=16)
    table.close()
    table.close()
    with pytest.raises(FeedStateError, match="is closed"):
        table.get(1)
