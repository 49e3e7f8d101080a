"""Child processes of the stress test: a writer at full speed and checking readers."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from kitefeed.ringbuf import Ring, open_reader

STRESS_DTYPE = np.dtype([("seq", "<u8"), ("values", "<u8", (6,)), ("check", "<u8")])
"""64-byte record: its position in the stream, random values, and a checksum of both."""

_WEIGHTS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                     0x27D4EB2F165667C5, 0x85EBCA77C2B2AE63, 0xFF51AFD7ED558CCD], dtype=np.uint64)
_SEQ_WEIGHT = np.array([0xD6E8FEB86659FD93], dtype=np.uint64)

CHILD_SECONDS = 60.0
"""Maximum time a child process runs before it gives up on its own."""


def checksum(seq: np.ndarray[Any, Any], values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Return the checksum of each record: a weighted sum of its fields, modulo 2**64."""
    return seq * _SEQ_WEIGHT + (values * _WEIGHTS).sum(axis=1, dtype=np.uint64)


def stress_write(name: str, seconds: float, seed: int, connection: Connection) -> None:
    """Publish batches of 1 to 500 records for ``seconds``, mark the ring closed, report the count."""
    rng = np.random.default_rng(seed)
    pool = np.zeros(1 << 14, dtype=STRESS_DTYPE)
    pool["values"] = rng.integers(0, 1 << 63, size=(len(pool), 6), dtype=np.uint64)
    sizes = rng.integers(1, 501, size=1 << 12)

    with Ring.attach(name, writable=True) as ring, ring.writer() as writer:
        connection.recv()
        deadline = time.monotonic() + seconds
        batches = 0
        while time.monotonic() < deadline:
            count = int(sizes[batches % len(sizes)])
            offset = (batches * 7919) % (len(pool) - count)
            records = pool[offset : offset + count].copy()
            records["seq"] = np.arange(writer.cursor, writer.cursor + count, dtype=np.uint64)
            records["check"] = checksum(records["seq"], records["values"])
            writer.publish(records)
            batches += 1
        ring.mark_closed()
        connection.send({"published": writer.cursor, "batches": batches})


def stress_read(name: str, wait: str, pause: float, connection: Connection) -> None:
    """Read ``name`` until it is closed and drained, checking every record; send the counts."""
    result = {"received": 0, "torn": 0, "damaged": 0, "disorder": 0, "batches": 0}
    with open_reader(name, wait=wait) as reader:
        connection.send("ready")
        deadline = time.monotonic() + CHILD_SECONDS
        last_seq = -1
        while time.monotonic() < deadline:
            batch = reader.read(timeout=1.0)
            if not len(batch):
                if reader.drained:
                    break
                continue
            if pause:
                # A slow consumer: the writer laps it, and it loses records or finds them torn.
                time.sleep(pause)
            records = batch.copy()
            del batch
            if not reader.intact():
                result["torn"] += len(records)
                continue

            result["batches"] += 1
            result["received"] += len(records)
            seq = records["seq"].astype(np.int64)
            expected = np.arange(reader.batch_position, reader.batch_position + len(records))
            result["damaged"] += int(np.count_nonzero(records["check"] != checksum(records["seq"], records["values"])))
            result["disorder"] += int(np.count_nonzero(seq != expected)) + int(seq[0] <= last_seq)
            last_seq = int(seq[-1])

        result.update(lost=reader.lost, position=reader.position, drained=reader.drained, read=reader.stats().read)
    connection.send(result)
