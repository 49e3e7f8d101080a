"""Functions that the process tests run in child processes started with "spawn"."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from kitefeed.ringbuf import Doorbell, Ring, open_reader

from .records import SEQ_DTYPE, damaged_positions, make_records

CHILD_SECONDS = 60.0
"""Maximum time a child process runs before it gives up on its own."""


def write_batches(name: str, batches: int, max_batch: int, seed: int) -> None:
    """Attach ``name`` writable, publish ``batches`` batches of sequence records, mark it closed."""
    rng = np.random.default_rng(seed)
    with Ring.attach(name, writable=True) as ring, ring.writer() as writer:
        position = 0
        for _ in range(batches):
            count = int(rng.integers(1, max_batch + 1))
            writer.publish(make_records(position, count))
            position += count
        ring.mark_closed()


def check_stream(read: Any, reader: Any, deadline: float) -> dict[str, Any]:
    """Read until the ring is closed and drained, checking order and contents of each record.

    Returns the counts of records received intact, found overwritten after use, and
    lost, with the first reader position and the first damaged positions.
    """
    result: dict[str, Any] = {"start": reader.position, "received": 0, "torn": 0, "damaged": [], "gaps": []}
    expected = reader.position
    lost_before = reader.lost
    while time.monotonic() < deadline:
        batch = read(timeout=0.5)
        if not len(batch):
            if reader.drained:
                break
            continue

        # Positions may only jump forward by the records counted as lost.
        expected += reader.lost - lost_before
        lost_before = reader.lost
        if reader.batch_position != expected:
            result["gaps"].append((expected, reader.batch_position))
        expected = reader.batch_position + len(batch)

        records = batch.copy()
        del batch
        if reader.intact():
            result["received"] += len(records)
            result["damaged"].extend(damaged_positions(records, reader.batch_position)[:10])
        else:
            result["torn"] += len(records)

    result["lost"] = reader.lost
    result["position"] = reader.position
    result["drained"] = reader.drained
    return result


def read_and_report(name: str, connection: Connection) -> None:
    """Attach ``name``, read and check the whole stream, and send the result on ``connection``."""
    with open_reader(name) as reader:
        connection.send("ready")
        result = check_stream(reader.read, reader, time.monotonic() + CHILD_SECONDS)
    connection.send(result)
    connection.close()


def hold_reader(name: str, connection: Connection) -> None:
    """Attach ``name`` as a reader, report "ready", and wait to be killed."""
    with open_reader(name) as reader:
        batch = reader.read_nowait()
        connection.send(("ready", len(batch)))
        del batch
        time.sleep(CHILD_SECONDS)


def hold_writer(name: str, connection: Connection) -> None:
    """Attach ``name`` writable, publish 3 records, report "ready", and wait to be killed."""
    with Ring.attach(name, writable=True) as ring, ring.writer() as writer:
        writer.publish(make_records(0, 3))
        connection.send("ready")
        time.sleep(CHILD_SECONDS)


def publish_when_sleeping(name: str, connection: Connection) -> None:
    """Attach ``name`` writable, wait until a reader is blocked, publish 3 records, report the wake-ups."""
    with Ring.attach(name, writable=True) as ring, ring.writer() as writer:
        deadline = time.monotonic() + CHILD_SECONDS
        while ring.sleepers == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        before = ring.wakes
        writer.publish(make_records(writer.cursor, 3))
        connection.send(ring.wakes - before)


def own_ring(name: str, doorbell: str | None, connection: Connection) -> None:
    """Create ``doorbell`` (if given) and the ring ``name``, publish 5 records, report "ready", wait to be killed."""
    bell = None if doorbell is None else Doorbell.create(doorbell)
    ring = Ring.create(name, SEQ_DTYPE, 16, doorbell=doorbell)
    with ring.writer() as writer:
        writer.publish(make_records(0, 5))
    connection.send("ready")
    time.sleep(CHILD_SECONDS)
    ring.__exit__(None, None, None)
    if bell is not None:
        bell.__exit__(None, None, None)


def write_more(name: str, count: int, connection: Connection) -> None:
    """Attach ``name`` writable, publish ``count`` records after the cursor, and report "done"."""
    with Ring.attach(name, writable=True) as ring, ring.writer() as writer:
        writer.publish(make_records(writer.cursor, count))
    connection.send("done")
