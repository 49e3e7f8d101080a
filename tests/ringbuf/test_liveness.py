"""Owner and writer liveness, abandoned rings, and stale-segment discovery with killed processes."""

from __future__ import annotations

import math
import os
import pickle
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from kitefeed.errors import RingAbandonedError
from kitefeed.ringbuf import (
    Doorbell,
    GroupReader,
    Ring,
    Wait,
    find_stale_segments,
    open_reader,
    remove_stale_segments,
)
from kitefeed.ringbuf.liveness import process_alive, process_start_time, self_identity
from kitefeed.ringbuf.stale import LEFTOVER_SECONDS

from . import processes
from .conftest import SPAWN
from .records import SEQ_DTYPE, make_records

SHM = Path("/dev/shm")


def start_owner(
    start_process: Callable[..., BaseProcess], name: str, doorbell: str | None = None
) -> BaseProcess:
    """Start a child that creates the ring ``name`` and publishes 5 records; return once it is ready."""
    parent_end, child_end = SPAWN.Pipe()
    child = start_process(processes.own_ring, name, doorbell, child_end)
    child_end.close()
    assert parent_end.poll(60)
    assert parent_end.recv() == "ready"
    parent_end.close()
    return child


def kill(process: BaseProcess) -> None:
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=30)
    assert process.exitcode == -signal.SIGKILL


def test_process_identity() -> None:
    pid, start_time = self_identity()
    assert pid == os.getpid()
    assert process_alive(pid, start_time)
    assert not process_alive(pid, start_time + 1)
    assert process_start_time(0) is None


@pytest.mark.parametrize("wait", [Wait.BUSY, Wait.BLOCK], ids=lambda wait: wait.value)
def test_dead_owner_raises_after_draining(
    make_name: Callable[[str], str], start_process: Callable[..., BaseProcess], wait: Wait
) -> None:
    name = make_name("owned")
    child = start_owner(start_process, name)
    with open_reader(name, wait=wait) as reader:
        assert reader.owner_alive
        assert reader.ring.owner_pid == child.pid
        kill(child)

        assert not reader.owner_alive
        assert not reader.writer_alive
        assert [int(seq) for seq in reader.read(timeout=None)["seq"]] == [0, 1, 2, 3, 4]
        with pytest.raises(RingAbandonedError, match=f"{name}.*{child.pid}.*remove_stale_segments") as info:
            reader.read(timeout=None)
        assert info.value.ring == name
        assert info.value.owner_pid == child.pid
        with pytest.raises(RingAbandonedError):
            list(reader)

        # A nonblocking read just finds nothing.
        assert len(reader.read_nowait()) == 0

    assert remove_stale_segments(name) == [name]


def test_dead_owner_ends_group_iteration(
    make_name: Callable[[str], str], start_process: Callable[..., BaseProcess]
) -> None:
    name = make_name("owned")
    child = start_owner(start_process, name)
    with GroupReader([open_reader(name)], wait=Wait.BLOCK) as group:
        kill(child)
        received = []
        with pytest.raises(RingAbandonedError, match=name):
            for batch in group:
                received.extend(int(seq) for seq in batch["seq"])
        assert received == [0, 1, 2, 3, 4]
    assert remove_stale_segments(name) == [name]


def test_abandoned_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(RingAbandonedError("ring-a", 42)))
    assert error.ring == "ring-a"
    assert error.owner_pid == 42
    assert "ring-a" in str(error)


def test_writer_restart_seen_by_reader(
    make_name: Callable[[str], str], start_process: Callable[..., BaseProcess]
) -> None:
    with Ring.create(make_name("restart"), SEQ_DTYPE, 16) as ring:
        reader = ring.reader(wait=Wait.BLOCK)
        assert reader.writer_generation == 0
        assert reader.writer_restarts == 0
        assert math.isinf(reader.liveness_age)

        parent_end, child_end = SPAWN.Pipe()
        first = start_process(processes.hold_writer, ring.name, child_end)
        child_end.close()
        assert parent_end.poll(60)
        assert parent_end.recv() == "ready"
        parent_end.close()
        assert reader.writer_alive
        assert reader.writer_generation == 1
        assert reader.writer_restarts == 0
        assert 0 <= reader.liveness_age < 60
        kill(first)

        # A dead writer with a live owner is no error: the reader keeps waiting.
        assert not reader.writer_alive
        assert reader.owner_alive
        assert len(reader.read(timeout=None)) == 3
        assert len(reader.read(timeout=0.05)) == 0

        parent_end, child_end = SPAWN.Pipe()
        second = start_process(processes.write_more, ring.name, 4, child_end)
        child_end.close()
        batch = reader.read(timeout=60)
        assert [int(seq) for seq in batch["seq"]] == [3, 4, 5, 6]
        assert parent_end.poll(60)
        assert parent_end.recv() == "done"
        parent_end.close()
        second.join(timeout=30)

        assert reader.writer_generation == 2
        assert reader.writer_restarts == 1
        assert ring.writer_pid == second.pid
        reader.close()


def test_stale_segments_of_killed_owner(
    prefix: str, make_name: Callable[[str], str], start_process: Callable[..., BaseProcess]
) -> None:
    child = start_owner(start_process, make_name("dead-ring"), make_name("dead-bell"))
    with Doorbell.create(make_name("live-bell")) as bell, Ring.create(
        make_name("live-ring"), SEQ_DTYPE, 8, doorbell=bell.name
    ) as live:
        with live.writer() as writer:
            writer.publish(make_records(0, 1))
        assert find_stale_segments(prefix) == []

        kill(child)
        assert child.pid is not None
        temporary = SHM / f"{make_name('lost')}.init-{child.pid}-0badf00d"
        temporary.write_bytes(b"")
        young = SHM / make_name("young-foreign")
        young.write_bytes(b"not a ring")
        old = SHM / make_name("old-foreign")
        old.write_bytes(b"not a ring")
        other_kind = SHM / make_name("other-kind")
        other_kind.write_bytes(b"\x01" * 4096)
        long_ago = time.time() - 2 * LEFTOVER_SECONDS
        os.utime(old, (long_ago, long_ago))
        os.utime(other_kind, (long_ago, long_ago))

        stale = [make_name("dead-bell"), make_name("dead-ring"), temporary.name, old.name]
        assert find_stale_segments(prefix) == sorted(stale)
        assert remove_stale_segments(prefix) == sorted(stale)
        assert find_stale_segments(prefix) == []
        assert sorted(path.name for path in SHM.glob(prefix + "*")) == sorted(
            [bell.name, live.name, young.name, other_kind.name]
        )
        assert live.owner_alive
        young.unlink()
        other_kind.unlink()


def test_reader_exit_keeps_segment(make_name: Callable[[str], str]) -> None:
    with Ring.create(make_name("kept"), SEQ_DTYPE, 8) as ring:
        open_reader(ring.name).close()
        assert (SHM / ring.name).exists()
        assert find_stale_segments(ring.name) == []
