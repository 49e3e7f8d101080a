"""Publishing and reading within one process."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from kitefeed.errors import InvalidRequestError, RingError
from kitefeed.parsers import TICK_DTYPE
from kitefeed.ringbuf import ReaderStats, Ring, RingReader, open_reader
from kitefeed.ringbuf import layout

from .records import SEQ_DTYPE, damaged_positions, make_records


@pytest.fixture
def ring(make_name: Callable[[str], str]) -> Iterator[Ring]:
    with Ring.create(make_name(), SEQ_DTYPE, 16) as ring:
        yield ring


def seqs(batch: np.ndarray) -> list[int]:
    return [int(seq) for seq in batch["seq"]]


def test_publish_then_read(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        assert writer.publish(make_records(0, 5)) == 5
        assert writer.cursor == 5

    batch = reader.read_nowait()
    assert seqs(batch) == [0, 1, 2, 3, 4]
    assert damaged_positions(batch, 0) == []
    assert reader.position == 5
    assert reader.batch_position == 0
    assert reader.intact()
    assert len(reader.read_nowait()) == 0


def test_empty_publish_changes_nothing(ring: Ring) -> None:
    with ring.writer() as writer:
        assert writer.publish(make_records(0, 0)) == 0
    assert ring.published == 0


def test_wrap_around_splits_views(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        writer.publish(make_records(0, 12))
        assert seqs(reader.read_nowait()) == list(range(12))
        writer.publish(make_records(12, 10))

    first = reader.read_nowait()
    second = reader.read_nowait()
    assert seqs(first) == [12, 13, 14, 15]
    assert seqs(second) == [16, 17, 18, 19, 20, 21]
    assert damaged_positions(second, 16) == []
    assert len(reader.read_nowait()) == 0


def test_max_records_limits_batch(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        writer.publish(make_records(0, 7))

    assert seqs(reader.read_nowait(max_records=3)) == [0, 1, 2]
    assert seqs(reader.read_nowait(max_records=3)) == [3, 4, 5]
    assert seqs(reader.read_nowait(max_records=3)) == [6]
    with pytest.raises(InvalidRequestError, match="max_records 0"):
        reader.read_nowait(max_records=0)


def test_batch_larger_than_capacity(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        assert writer.publish(make_records(0, 40)) == 40

    batches = [reader.read_nowait(), reader.read_nowait()]
    assert seqs(batches[0]) + seqs(batches[1]) == list(range(24, 40))
    assert reader.lost == 24
    assert reader.stats() == ReaderStats(position=40, published=40, read=16, lost=24)


def test_lapped_reader_counts_lost_exactly(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        writer.publish(make_records(0, 3))
        assert seqs(reader.read_nowait(max_records=1)) == [0]
        for start in range(3, 50, 7):
            writer.publish(make_records(start, 7))

    # 52 published, the last 16 intact: positions 1..35 were overwritten.
    batch = reader.read_nowait()
    assert reader.lost == 35
    assert reader.batch_position == 36
    assert seqs(batch) == list(range(36, 48))
    assert seqs(reader.read_nowait()) == list(range(48, 52))


def test_intact_turns_false_when_overwritten(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        writer.publish(make_records(0, 4))
        batch = reader.read_nowait()
        writer.publish(make_records(4, 12))
        assert reader.intact()
        writer.publish(make_records(16, 1))

    assert not reader.intact()
    assert seqs(batch)[0] == 16


def test_start_oldest_and_newest(ring: Ring) -> None:
    with ring.writer() as writer:
        writer.publish(make_records(0, 20))
        oldest = ring.reader("oldest")
        newest = ring.reader("newest")
        writer.publish(make_records(20, 2))

    # The second publish overwrote positions 4 and 5 before the oldest reader read.
    assert oldest.position == 4
    assert seqs(oldest.read_nowait()) == list(range(6, 16))
    assert oldest.lost == 2
    assert newest.position == 20
    assert seqs(newest.read_nowait()) == [20, 21]
    assert newest.lost == 0
    with pytest.raises(InvalidRequestError, match="'middle'"):
        ring.reader("middle")  # type: ignore[arg-type]


def test_views_are_read_only(ring: Ring) -> None:
    with ring.writer() as writer:
        writer.publish(make_records(0, 2))
    batch = ring.reader().read_nowait()
    assert not batch.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        batch["seq"][0] = 7

    with open_reader(ring.name) as reader:
        attached = reader.read_nowait()
        assert not attached.flags.writeable
        assert seqs(attached) == [0, 1]
        del attached


def test_wrong_dtype_rejected(ring: Ring) -> None:
    with ring.writer() as writer:
        with pytest.raises(InvalidRequestError, match="expected a 1-D array of dtype"):
            writer.publish(np.zeros(3, dtype=np.uint64))
        with pytest.raises(InvalidRequestError, match="2-D"):
            writer.publish(make_records(0, 4).reshape(2, 2))


@pytest.mark.parametrize(
    "dtype",
    [
        TICK_DTYPE,
        np.dtype("<f8"),
        np.dtype(">i4"),
        np.dtype("M8[ns]"),
        np.dtype([("a", "u1"), ("b", "<f8", (2, 3))], align=True),
        np.dtype({"names": ["a", "b"], "formats": ["u1", "<u2"], "offsets": [0, 5], "itemsize": 9}),
        np.dtype([("outer", [("inner", "<u2"), ("text", "S3")])]),
    ],
    ids=["tick", "f8", "big-endian", "datetime", "aligned", "offsets", "nested"],
)
def test_dtype_round_trip(make_name: Callable[[str], str], dtype: np.dtype) -> None:
    with Ring.create(make_name("dtype"), dtype, 4) as ring, Ring.attach(ring.name) as attached:
        assert attached.dtype == dtype
        assert attached.dtype.itemsize == dtype.itemsize
        assert attached.record_size == dtype.itemsize


def test_tick_records_round_trip(make_name: Callable[[str], str]) -> None:
    rng = np.random.default_rng(20240611)
    ticks = np.zeros(5, dtype=TICK_DTYPE)
    ticks["last_price"] = rng.uniform(1, 1000, size=5)
    with Ring.create(make_name("tick"), TICK_DTYPE, 8) as ring:
        with ring.writer() as writer:
            writer.publish(ticks)
        with open_reader(ring.name) as reader:
            batch = reader.read_nowait()
            assert batch.tobytes() == ticks.tobytes()
            del batch


def test_user_area_set_and_get(ring: Ring) -> None:
    ring.set_user(b'{"index": 2, "size": 4}')
    with Ring.attach(ring.name) as attached:
        assert attached.user == b'{"index": 2, "size": 4}'
        with pytest.raises(RingError, match="read-only"):
            attached.set_user(b"{}")


def test_closed_flag_seen_by_reader(ring: Ring) -> None:
    with open_reader(ring.name) as reader:
        assert not reader.closed
        assert not reader.drained
        with ring.writer() as writer:
            writer.publish(make_records(0, 2))
        ring.mark_closed()

        assert reader.closed
        assert not reader.drained
        assert seqs(reader.read(timeout=None)) == [0, 1]
        assert reader.drained
        assert len(reader.read(timeout=None)) == 0


def test_read_timeout_returns_empty(ring: Ring) -> None:
    reader = ring.reader()
    batch = reader.read(timeout=0.01)
    assert len(batch) == 0
    assert batch.dtype == SEQ_DTYPE
    assert len(reader.read(timeout=0)) == 0


def test_liveness_and_writer_pid(ring: Ring) -> None:
    assert ring.liveness_ns == 0
    with ring.writer() as writer:
        after_open = ring.liveness_ns
        assert after_open > 0
        writer.publish(make_records(0, 1))
        after_publish = ring.liveness_ns
        writer.touch()
        assert ring.liveness_ns >= after_publish >= after_open
    assert ring.writer_pid == os.getpid()


def test_second_writer_rejected(ring: Ring) -> None:
    writer = ring.writer()
    with Ring.attach(ring.name, writable=True) as other:
        with pytest.raises(RingError, match="already has a writer"):
            other.writer()
        writer.close()
        with other.writer() as second:
            assert second.publish(make_records(0, 1)) == 1


def test_reader_mapping_cannot_write(ring: Ring) -> None:
    with Ring.attach(ring.name) as attached:
        with pytest.raises(RingError, match="read-only"):
            attached.writer()
        with pytest.raises(RingError, match="read-only"):
            attached.mark_closed()


def test_unfinished_publish_blocks_new_writer(ring: Ring) -> None:
    with Ring.attach(ring.name, writable=True) as other:
        other._words[layout.CLAIMED] = 3
        with pytest.raises(RingError, match="unfinished publish"):
            ring.writer()


def test_close_with_live_views(make_name: Callable[[str], str]) -> None:
    ring = Ring.create(make_name("views"), SEQ_DTYPE, 8)
    with ring.writer() as writer:
        writer.publish(make_records(0, 3))
    reader: RingReader = ring.reader()
    batch = reader.read_nowait()

    ring.close()
    ring.close()
    ring.unlink()
    assert seqs(batch) == [0, 1, 2]
    with pytest.raises(RingError, match="closed"):
        reader.read_nowait()
    with pytest.raises(RingError, match="closed"):
        _ = ring.published
    del batch
    gc.collect()


def test_reader_close_releases_owned_ring(ring: Ring) -> None:
    reader = open_reader(ring.name)
    reader.close()
    reader.close()
    assert reader.ring._mapping is None
    with pytest.raises(RingError, match="closed"):
        reader.stats()


def test_repr_names_ring(ring: Ring) -> None:
    assert ring.name in repr(ring)
    assert ring.name in repr(ring.reader())
