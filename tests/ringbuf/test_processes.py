"""Writers and readers in separate processes, started with the "spawn" method."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np
import pytest

from kitefeed.ringbuf import Ring, list_segments, open_reader

from . import processes
from .records import SEQ_DTYPE, make_records

SPAWN = multiprocessing.get_context("spawn")
SEED = 1_234_567


def assert_stream_complete(result: dict[str, Any], published: int) -> None:
    assert result["damaged"] == []
    assert result["gaps"] == []
    assert result["drained"]
    assert result["position"] == published
    assert result["start"] + result["received"] + result["torn"] + result["lost"] == published


@pytest.mark.parametrize("capacity", [64, 1 << 16], ids=["laps", "fits"])
def test_writer_process_reader_here(
    make_name: Callable[[str], str], start_process: Callable[..., BaseProcess], capacity: int
) -> None:
    print(f"seed {SEED}")
    with Ring.create(make_name("stream"), SEQ_DTYPE, capacity) as ring:
        reader = ring.reader()
        writer = start_process(processes.write_batches, ring.name, 1000, 50, SEED)

        result = processes.check_stream(reader.read, reader, time.monotonic() + 60)
        print(result)
        writer.join(timeout=30)

        assert writer.exitcode == 0
        assert_stream_complete(result, ring.published)
        assert result["received"] > 0
        if capacity > ring.published:
            assert result["lost"] == 0
            assert result["torn"] == 0
            assert result["received"] == ring.published
        reader.close()


@pytest.mark.parametrize("capacity", [64, 1 << 16], ids=["laps", "fits"])
def test_reader_process_attaches_by_name(
    make_name: Callable[[str], str], start_process: Callable[..., BaseProcess], capacity: int
) -> None:
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    with Ring.create(make_name("stream"), SEQ_DTYPE, capacity) as ring:
        parent_end, child_end = SPAWN.Pipe()
        reader = start_process(processes.read_and_report, ring.name, child_end)
        child_end.close()
        assert parent_end.poll(60)
        assert parent_end.recv() == "ready"

        with ring.writer() as writer:
            position = 0
            for _ in range(1000):
                count = int(rng.integers(1, 51))
                writer.publish(make_records(position, count))
                position += count
        ring.mark_closed()

        assert parent_end.poll(60)
        result = parent_end.recv()
        parent_end.close()
        reader.join(timeout=30)

        assert reader.exitcode == 0
        assert_stream_complete(result, ring.published)
        assert result["start"] == 0
        if capacity > ring.published:
            assert result["lost"] == 0
            assert result["received"] == ring.published


def test_killed_reader_leaves_segment(
    make_name: Callable[[str], str], start_process: Callable[..., BaseProcess]
) -> None:
    with Ring.create(make_name("killed"), SEQ_DTYPE, 8) as ring:
        with ring.writer() as writer:
            writer.publish(make_records(0, 5))

        parent_end, child_end = SPAWN.Pipe()
        reader = start_process(processes.hold_reader, ring.name, child_end)
        child_end.close()
        assert parent_end.poll(60)
        assert parent_end.recv() == ("ready", 5)
        parent_end.close()

        os.kill(reader.pid, signal.SIGKILL)
        reader.join(timeout=30)

        assert reader.exitcode == -signal.SIGKILL
        assert list_segments(ring.name) == [ring.name]
        with open_reader(ring.name) as again:
            batch = again.read_nowait()
            assert [int(seq) for seq in batch["seq"]] == [0, 1, 2, 3, 4]
            del batch


def test_killed_writer_frees_writer_lock(
    make_name: Callable[[str], str], start_process: Callable[..., BaseProcess]
) -> None:
    with Ring.create(make_name("writer"), SEQ_DTYPE, 8) as ring:
        parent_end, child_end = SPAWN.Pipe()
        writer_process = start_process(processes.hold_writer, ring.name, child_end)
        child_end.close()
        assert parent_end.poll(60)
        assert parent_end.recv() == "ready"
        parent_end.close()
        assert ring.writer_pid == writer_process.pid

        os.kill(writer_process.pid, signal.SIGKILL)
        writer_process.join(timeout=30)

        assert list_segments(ring.name) == [ring.name]
        with ring.writer() as writer:
            assert writer.cursor == 3
            assert writer.publish(make_records(3, 1)) == 4
