"""Reserving ring slots, filling them in place and committing them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from kitefeed.errors import InvalidRequestError, RingError
from kitefeed.ringbuf import Ring, RingReader

from .records import SEQ_DTYPE, damaged_positions, make_records

CAPACITY = 16
SEED = 20240611


@pytest.fixture
def ring(make_name: Callable[[str], str]) -> Iterator[Ring]:
    with Ring.create(make_name(), SEQ_DTYPE, CAPACITY) as ring:
        yield ring


def seqs(batch: np.ndarray) -> list[int]:
    return [int(seq) for seq in batch["seq"]]


def fill(view: np.ndarray, start: int, count: int) -> None:
    """Write the records of positions ``start`` to ``start + count - 1`` into the first slots of ``view``."""
    view[:count] = make_records(start, count)


def test_reserve_returns_writable_view(ring: Ring) -> None:
    with ring.writer() as writer:
        view = writer.reserve(5)
        assert view is not None
        assert view.dtype == SEQ_DTYPE
        assert view.shape == (5,)
        assert view.flags.writeable
        assert view.flags.c_contiguous
        writer.commit(0)


def test_reserved_records_invisible_until_commit(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        view = writer.reserve(4)
        assert view is not None
        fill(view, 0, 4)

        assert len(reader.read_nowait()) == 0
        assert ring.published == 0

        assert writer.commit(4) == 4
        batch = reader.read_nowait()
        assert seqs(batch) == [0, 1, 2, 3]
        assert damaged_positions(batch, 0) == []
        assert reader.intact()


def test_commit_fewer_publishes_only_those(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        view = writer.reserve(6)
        assert view is not None
        fill(view, 0, 2)
        assert writer.commit(2) == 2
        assert writer.cursor == 2

        # The next records follow the committed ones without a gap.
        assert writer.publish(make_records(2, 3)) == 5

    batch = reader.read_nowait()
    assert seqs(batch) == [0, 1, 2, 3, 4]
    assert reader.lost == 0


def test_commit_zero_publishes_nothing(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        writer.publish(make_records(0, 3))
        assert seqs(reader.read_nowait()) == [0, 1, 2]

        view = writer.reserve(8)
        assert view is not None
        assert writer.commit(0) == 3
        assert writer.cursor == 3

    assert ring.published == 3
    assert len(reader.read_nowait()) == 0

    # claimed went back to published, so a new writer can attach.
    with ring.writer() as writer:
        assert writer.cursor == 3


def test_reserve_at_wrap_returns_none(ring: Ring) -> None:
    with ring.writer() as writer:
        writer.publish(make_records(0, CAPACITY - 3))

        assert writer.reserve(4) is None
        # Nothing was claimed, so publish still works and a new writer could attach.
        writer.publish(make_records(CAPACITY - 3, 4))
        view = writer.reserve(CAPACITY - 1)
        assert view is not None
        assert len(view) == CAPACITY - 1
        writer.commit(0)


def test_reserve_whole_ring_at_start(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        view = writer.reserve(CAPACITY)
        assert view is not None
        fill(view, 0, CAPACITY)
        writer.commit(CAPACITY)

    batch = reader.read_nowait()
    assert seqs(batch) == list(range(CAPACITY))


def test_invalid_reserve_and_commit(ring: Ring) -> None:
    with ring.writer() as writer:
        with pytest.raises(InvalidRequestError, match="reserve count 0"):
            writer.reserve(0)
        with pytest.raises(InvalidRequestError, match=f"reserve count {CAPACITY + 1}"):
            writer.reserve(CAPACITY + 1)
        with pytest.raises(InvalidRequestError, match="commit count 1"):
            writer.commit(1)

        assert writer.reserve(3) is not None
        with pytest.raises(InvalidRequestError, match="still reserved"):
            writer.reserve(1)
        with pytest.raises(InvalidRequestError, match="still reserved"):
            writer.publish(make_records(0, 1))
        with pytest.raises(InvalidRequestError, match="commit count 4"):
            writer.commit(4)
        writer.commit(3)

    with pytest.raises(RingError, match="closed"):
        writer.reserve(1)


def test_lagging_reader_sees_claim_during_reservation(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        writer.publish(make_records(0, CAPACITY))

        # The reservation overwrites the slots of positions 0-3, which the reader
        # has not read yet: it must count them as lost and not return them.
        view = writer.reserve(4)
        assert view is not None
        fill(view, CAPACITY, 4)
        batch = reader.read_nowait()
        assert seqs(batch) == list(range(4, CAPACITY))
        assert reader.lost == 4
        assert damaged_positions(batch, 4) == []
        assert reader.intact()

        writer.commit(4)
        batch = reader.read_nowait()
        assert seqs(batch) == list(range(CAPACITY, CAPACITY + 4))
        assert reader.lost == 4


def test_intact_false_after_overlapping_reservation(ring: Ring) -> None:
    reader = ring.reader()
    with ring.writer() as writer:
        writer.publish(make_records(0, CAPACITY))
        batch = reader.read_nowait()
        assert len(batch) == CAPACITY

        # A reservation of the batch's first slots, filled while the reader still
        # uses the batch, must make intact() report the overwrite.
        view = writer.reserve(2)
        assert view is not None
        fill(view, CAPACITY, 2)
        assert not reader.intact()
        writer.commit(2)
        assert not reader.intact()


def drain(reader: RingReader, into: list[int]) -> None:
    batch = reader.read_nowait()
    if len(batch) == 0:
        return
    values = seqs(batch)
    damaged = damaged_positions(batch, values[0])
    if reader.intact():
        assert damaged == []
        into.extend(values)


def test_accounting_matches_publish_on_random_sequences(make_name: Callable[[str], str]) -> None:
    # Two rings fed the same records, one with publish() and one with reserve()/commit()
    # (falling back to publish() at the wrap-around, as the worker does), must give
    # their readers the same records and the same loss counts.
    rng = np.random.default_rng(SEED)
    with (
        Ring.create(make_name("plain"), SEQ_DTYPE, CAPACITY) as plain_ring,
        Ring.create(make_name("reserve"), SEQ_DTYPE, CAPACITY) as reserve_ring,
    ):
        plain_reader = plain_ring.reader()
        reserve_reader = reserve_ring.reader()
        plain_seen: list[int] = []
        reserve_seen: list[int] = []
        with plain_ring.writer() as plain, reserve_ring.writer() as reserved:
            position = 0
            for step in range(400):
                reserve_count = int(rng.integers(1, CAPACITY + 1))
                count = int(rng.integers(0, reserve_count + 1))
                records = make_records(position, count)

                plain.publish(records)
                view = reserved.reserve(reserve_count)
                if view is None:
                    reserved.publish(records)
                else:
                    view[:count] = records
                    reserved.commit(count)
                position += count
                assert plain.cursor == reserved.cursor == position, f"step {step}"

                if rng.random() < 0.4:
                    drain(plain_reader, plain_seen)
                    drain(reserve_reader, reserve_seen)
                    assert plain_reader.lost == reserve_reader.lost, f"step {step}"

            drain(plain_reader, plain_seen)
            drain(reserve_reader, reserve_seen)

        assert reserve_seen == plain_seen
        assert reserve_reader.lost == plain_reader.lost
        assert reserve_reader.position == plain_reader.position == position
        assert len(reserve_seen) + reserve_reader.lost == position
