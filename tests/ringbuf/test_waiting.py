"""Wait strategies: timeouts, wake-ups by writers in threads and processes, asyncio, doorbells."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess

import numpy as np
import pytest

from kitefeed.errors import InvalidRequestError
from kitefeed.ringbuf import Doorbell, GroupReader, Ring, RingReader, RingWriter, Wait

from . import processes
from .conftest import SPAWN
from .records import SEQ_DTYPE, make_records

STRATEGIES = [Wait.BUSY, Wait.SPIN, Wait.BLOCK]


@pytest.fixture
def ring(make_name: Callable[[str], str]) -> Iterator[Ring]:
    with Ring.create(make_name(), SEQ_DTYPE, 64) as ring:
        yield ring


def seqs(batch: np.ndarray) -> list[int]:
    return [int(seq) for seq in batch["seq"]]


def wait_for_sleepers(ring: Ring, count: int) -> None:
    """Return once ``count`` readers are blocked on the ring's wait area; fail after 10 s."""
    for _ in range(10_000):
        if ring.sleepers >= count:
            return
        threading.Event().wait(0.001)
    raise AssertionError(f"expected {count} sleepers, found {ring.sleepers}")


def publish_later(writer: RingWriter, ring: Ring, start: int, count: int) -> threading.Thread:
    """Publish from a thread once a reader sleeps, or after 10 s."""

    def publish() -> None:
        for _ in range(10_000):
            if ring.sleepers or ring.wakes:
                break
            threading.Event().wait(0.001)
        writer.publish(make_records(start, count))

    thread = threading.Thread(target=publish)
    thread.start()
    return thread


@pytest.mark.parametrize("wait", STRATEGIES, ids=lambda wait: wait.value)
def test_timeout_returns_empty(ring: Ring, wait: Wait) -> None:
    reader = ring.reader(wait=wait)
    batch = reader.read(timeout=0.02)
    assert len(batch) == 0
    assert batch.dtype == SEQ_DTYPE
    assert reader.wait is wait


@pytest.mark.parametrize("wait", [Wait.SPIN, Wait.BLOCK], ids=lambda wait: wait.value)
def test_writer_thread_wakes_reader(ring: Ring, wait: Wait) -> None:
    reader = ring.reader(wait=wait, spin_us=10.0)
    with ring.writer() as writer:
        thread = publish_later(writer, ring, 0, 4)
        try:
            batch = reader.read(timeout=30)
        finally:
            thread.join(timeout=30)
    assert seqs(batch) == [0, 1, 2, 3]
    assert ring.sleepers == 0


def test_busy_reader_sees_thread_publish(ring: Ring) -> None:
    reader = ring.reader(wait="busy")
    with ring.writer() as writer:
        thread = threading.Thread(target=writer.publish, args=(make_records(0, 2),))
        thread.start()
        try:
            batch = reader.read(timeout=30)
        finally:
            thread.join(timeout=30)
    assert seqs(batch) == [0, 1]
    assert ring.wakes == 0


def test_writer_process_wakes_reader(ring: Ring, start_process: Callable[..., BaseProcess]) -> None:
    reader = ring.reader(wait=Wait.BLOCK)
    parent_end, child_end = SPAWN.Pipe()
    child = start_process(processes.publish_when_sleeping, ring.name, child_end)
    child_end.close()

    batch = reader.read(timeout=60)
    assert seqs(batch) == [0, 1, 2]
    assert parent_end.poll(60)
    assert parent_end.recv() == 1
    parent_end.close()
    child.join(timeout=30)
    assert child.exitcode == 0


def test_one_wake_per_publish_while_sleeping(ring: Ring) -> None:
    reader = ring.reader(wait=Wait.BLOCK)
    with ring.writer() as writer:
        for round in range(3):
            writer.publish(make_records(round * 2, 1))
            assert ring.wakes == round

            received: list[np.ndarray] = []
            thread = threading.Thread(target=lambda: received.append(reader.read(timeout=30).copy()))
            thread.start()
            try:
                reader_batch_start = round * 2
                # The first record is waiting, so the read returns without sleeping.
                thread.join(timeout=30)
                assert seqs(received[0]) == [reader_batch_start]
                assert ring.wakes == round

                thread = threading.Thread(target=lambda: received.append(reader.read(timeout=30).copy()))
                thread.start()
                wait_for_sleepers(ring, 1)
                writer.publish(make_records(round * 2 + 1, 1))
            finally:
                thread.join(timeout=30)
            assert seqs(received[1]) == [round * 2 + 1]
            assert ring.wakes == round + 1


def test_no_wake_without_sleepers(ring: Ring) -> None:
    spinning = ring.reader(wait=Wait.BUSY)
    with ring.writer() as writer:
        for start in range(0, 40, 4):
            writer.publish(make_records(start, 4))
            assert len(spinning.read(timeout=1)) == 4
    assert ring.wakes == 0
    assert ring.sleepers == 0


@pytest.mark.parametrize("wait", STRATEGIES, ids=lambda wait: wait.value)
def test_mark_closed_wakes_reader(ring: Ring, wait: Wait) -> None:
    reader = ring.reader(wait=wait)
    result: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: result.append(reader.read(timeout=60)))
    thread.start()
    try:
        if wait is not Wait.BUSY:
            wait_for_sleepers(ring, 1)
        ring.mark_closed()
    finally:
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(result[0]) == 0
    assert reader.drained


def test_iteration_ends_when_drained(ring: Ring) -> None:
    reader = ring.reader(wait=Wait.BLOCK)
    with ring.writer() as writer:
        writer.publish(make_records(0, 3))
        writer.publish(make_records(3, 2))
    ring.mark_closed()
    assert [seqs(batch) for batch in reader] == [[0, 1, 2, 3, 4]]


@pytest.mark.parametrize("wait", STRATEGIES, ids=lambda wait: wait.value)
def test_async_for_reads_until_drained(ring: Ring, wait: Wait) -> None:
    reader = ring.reader(wait=wait)
    writer = ring.writer()

    async def consume() -> tuple[list[int], int]:
        ticks = 0
        stop = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        received: list[int] = []
        async for batch in reader:
            received.extend(seqs(batch))
        stop.set()
        await ticker
        return received, ticks

    def produce() -> None:
        for start in range(0, 30, 3):
            writer.publish(make_records(start, 3))
            threading.Event().wait(0.005)
        ring.mark_closed()

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        received, ticks = asyncio.run(consume())
    finally:
        thread.join(timeout=30)
        writer.close()

    assert received == list(range(30))
    # The event loop kept running other tasks while the reader waited.
    assert ticks > 0


def test_read_async_timeout_and_cancel(ring: Ring) -> None:
    reader = ring.reader(wait=Wait.BLOCK)

    async def main() -> int:
        empty = await reader.read_async(timeout=0.02)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read_async(), timeout=0.02)
        return len(empty)

    assert asyncio.run(main()) == 0
    assert reader.position == 0


def test_invalid_wait_rejected(ring: Ring) -> None:
    with pytest.raises(InvalidRequestError, match="'sleepy'"):
        ring.reader(wait="sleepy")
    with pytest.raises(InvalidRequestError, match="spin_us -1"):
        ring.reader(spin_us=-1)


def test_doorbell_shared_by_rings(make_name: Callable[[str], str]) -> None:
    with Doorbell.create(make_name("bell")) as bell:
        rings = [Ring.create(make_name(f"key{index}"), SEQ_DTYPE, 16, doorbell=bell.name) for index in range(3)]
        try:
            with Ring.attach(rings[1].name) as attached:
                assert attached.doorbell == bell.name

            group = GroupReader((ring.reader() for ring in rings), wait=Wait.BLOCK)
            assert group.blocks_on_one_futex
            writer = rings[2].writer()
            received: list[np.ndarray] = []
            thread = threading.Thread(target=lambda: received.append(group.read(timeout=30).copy()))
            thread.start()
            try:
                wait_for_sleepers(rings[0], 1)
                assert bell.sleepers == 1
                writer.publish(make_records(0, 2))
            finally:
                thread.join(timeout=30)
            assert seqs(received[0]) == [0, 1]
            assert group.last_index == 2
            assert bell.wakes == 1
            writer.close()
            group.close()
        finally:
            for ring in rings:
                ring.__exit__(None, None, None)


def test_group_without_shared_doorbell_rotates(make_name: Callable[[str], str]) -> None:
    rings = [Ring.create(make_name(f"key{index}"), SEQ_DTYPE, 16) for index in range(2)]
    try:
        group = GroupReader((ring.reader() for ring in rings), wait=Wait.BLOCK)
        assert not group.blocks_on_one_futex
        writer = rings[1].writer()
        thread = publish_later(writer, rings[0], 0, 3)
        try:
            batch = group.read(timeout=30)
        finally:
            thread.join(timeout=30)
        assert seqs(batch) == [0, 1, 2]
        assert group.last_index == 1
        writer.close()
        group.close()
    finally:
        for ring in rings:
            ring.__exit__(None, None, None)


@pytest.mark.parametrize("wait", STRATEGIES, ids=lambda wait: wait.value)
def test_group_close_wakes_blocked_read(ring: Ring, wait: Wait) -> None:
    group = GroupReader([ring.reader()], wait=wait)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(len(group.read(timeout=60))))
    thread.start()
    try:
        if wait is not Wait.BUSY:
            wait_for_sleepers(ring, 1)
        group.close()
    finally:
        thread.join(timeout=30)
    assert result == [0]


def test_reader_spin_reads_many_batches(ring: Ring) -> None:
    # A reader that keeps up sees every record once, in order, across wrap-arounds.
    reader: RingReader = ring.reader(wait=Wait.SPIN, spin_us=200.0)
    received: list[int] = []
    with ring.writer() as writer:

        def produce() -> None:
            for start in range(0, 2000, 10):
                while writer.cursor - reader.position > 40:
                    threading.Event().wait(0.0001)
                writer.publish(make_records(start, 10))
            ring.mark_closed()

        thread = threading.Thread(target=produce)
        thread.start()
        try:
            for batch in reader:
                received.extend(seqs(batch))
        finally:
            thread.join(timeout=30)
    assert received == list(range(2000))
    assert reader.lost == 0
