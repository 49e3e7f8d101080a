"""Several rings read as one stream."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from kitefeed.errors import InvalidRequestError, RingError
from kitefeed.ringbuf import GroupReader, Ring, open_group_reader

from .records import SEQ_DTYPE, make_records


@pytest.fixture
def rings(make_name: Callable[[str], str]) -> Iterator[list[Ring]]:
    rings = [Ring.create(make_name(f"key{index}"), SEQ_DTYPE, 16) for index in range(3)]
    yield rings
    for ring in rings:
        ring.__exit__(None, None, None)


def test_rotates_fairly_between_rings(rings: list[Ring]) -> None:
    for index, ring in enumerate(rings):
        with ring.writer() as writer:
            writer.publish(make_records(100 * index, 4))

    with open_group_reader([ring.name for ring in rings]) as group:
        order = []
        for _ in range(12):
            batch = group.read_nowait(max_records=1)
            order.append((group.last_index, int(batch["seq"][0])))
        assert len(group.read_nowait()) == 0

    assert [index for index, _ in order] == [0, 1, 2] * 4
    assert [seq for index, seq in order if index == 1] == [100, 101, 102, 103]


def test_skips_empty_rings(rings: list[Ring]) -> None:
    with rings[2].writer() as writer:
        writer.publish(make_records(0, 3))

    with GroupReader(ring.reader() for ring in rings) as group:
        batch = group.read_nowait()
        assert group.last_index == 2
        assert [int(seq) for seq in batch["seq"]] == [0, 1, 2]
        assert group.intact()


def test_iteration_ends_when_all_drained(rings: list[Ring]) -> None:
    group = GroupReader(ring.reader() for ring in rings)
    for index, ring in enumerate(rings):
        with ring.writer() as writer:
            writer.publish(make_records(0, 10 + index))
            writer.publish(make_records(10 + index, 2))
        ring.mark_closed()

    received = [batch.copy() for batch in group]
    assert sum(len(batch) for batch in received) == 10 + 11 + 12 + 6
    assert group.drained

    stats = group.stats()
    assert stats.read == 39
    assert stats.lost == 0
    assert [ring.read for ring in stats.rings] == [12, 13, 14]
    group.close()


def test_lost_counted_per_ring(rings: list[Ring]) -> None:
    group = GroupReader(ring.reader() for ring in rings)
    with rings[1].writer() as writer:
        writer.publish(make_records(0, 40))

    # Position 24 is slot 8, so the first run ends at the end of the ring's memory.
    assert len(group.read_nowait()) == 8
    assert group.lost == 24
    assert [ring.lost for ring in group.stats().rings] == [0, 24, 0]
    group.close()


def test_close_from_other_thread_stops_iteration(rings: list[Ring]) -> None:
    group = GroupReader(ring.reader() for ring in rings)
    received: list[int] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for batch in group:
                received.extend(int(seq) for seq in batch["seq"])
        except BaseException as exc:
            errors.append(exc)

    with rings[0].writer() as writer:
        writer.publish(make_records(0, 5))
    thread = threading.Thread(target=consume)
    thread.start()
    try:
        # The consumer blocks once it has the 5 records, because no ring is closed.
        for _ in range(10_000):
            if len(received) == 5:
                break
            thread.join(timeout=0.001)
        group.close()
    finally:
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert errors == []
    assert received == [0, 1, 2, 3, 4]
    assert len(group.read_nowait()) == 0
    assert len(group.read(timeout=None)) == 0


def test_read_timeout_returns_empty(rings: list[Ring]) -> None:
    with GroupReader(ring.reader() for ring in rings) as group:
        batch = group.read(timeout=0.01)
        assert len(batch) == 0
        assert batch.dtype == SEQ_DTYPE


def test_mixed_dtypes_rejected(rings: list[Ring], make_name: Callable[[str], str]) -> None:
    with Ring.create(make_name("other"), np.uint64, 8) as other:
        with pytest.raises(InvalidRequestError, match="one dtype"):
            GroupReader([rings[0].reader(), other.reader()])


def test_no_readers_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="at least one"):
        GroupReader([])


def test_open_missing_ring_names_it(rings: list[Ring], make_name: Callable[[str], str]) -> None:
    missing = make_name("missing")
    with pytest.raises(RingError, match=missing):
        open_group_reader([rings[0].name, missing])


def test_group_async_iteration_reads_every_ring() -> None:
    import asyncio
    import os
    import threading

    import numpy as np

    from kitefeed.ringbuf import Doorbell, GroupReader, Ring

    prefix = f"kitefeed-test-async-{os.getpid()}"
    with Doorbell.create(f"{prefix}-bell"):
        with Ring.create(f"{prefix}-0", np.int64, 64, doorbell=f"{prefix}-bell") as first, Ring.create(
            f"{prefix}-1", np.int64, 64, doorbell=f"{prefix}-bell"
        ) as second:
            group = GroupReader([first.reader(wait="block"), second.reader(wait="block")], wait="block")
            writers = [first.writer(), second.writer()]

            def publish_then_close() -> None:
                for value in range(10):
                    writers[value % 2].publish(np.array([value], dtype=np.int64))
                first.mark_closed()
                second.mark_closed()

            async def collect() -> list[int]:
                values: list[int] = []
                thread = threading.Thread(target=publish_then_close)
                thread.start()
                async for batch in group:
                    values.extend(batch.tolist())
                thread.join()
                return values

            values = asyncio.run(collect())
            group.close()
            for writer in writers:
                writer.close()

    assert sorted(values) == list(range(10))
