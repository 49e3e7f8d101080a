"""Both ends of the throughput benchmark for the ring, multiprocessing.Queue and Pipe.

A writer runs in a child process. For each round the parent sends it a number of
batches on a control pipe, then receives them with the matching ``receive_*``
function until it has every record. Each receiver hands its caller a usable 1-D
array of :data:`~kitefeed.parsers.TICK_DTYPE` per batch:

* ring: a read-only view into shared memory, checked with ``intact()`` after use
  (or a copy of it, for ``ring-copy``), so no copy is made unless requested;
* Queue: the array unpickled from the queue, which the reader owns;
* Pipe: ``np.frombuffer`` over the bytes of ``recv_bytes()``, a read-only array
  that the reader owns. The writer sends the batch's memory with
  ``send_bytes(batch.view(np.uint8))``, which copies nothing on its side.
"""

from __future__ import annotations

import queue as queue_module
import time
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Any

import msgspec
import numpy as np

from kitefeed.parsers import TICK_DTYPE
from kitefeed.ringbuf import Ring, RingReader

from .ticks import make_ticks

WARM_BATCH = 4096
"""Records per publish while the ring writer fills one lap before the first round."""

CHILD_SECONDS = 60.0
"""Time a writer waits for its next command before it gives up and exits."""


class Received(msgspec.Struct):
    """Counts of one round at a receiver."""

    records: int
    """Records received intact."""
    last_token: int
    """``instrument_token`` of the last record received, the batch size when complete."""
    lost: int = 0
    """Ring only: records overwritten before the reader got to them."""
    torn: int = 0
    """Ring only: records found overwritten after the reader used them."""


# ----------------------------------------------------------------- writers (child processes)


def write_ring(name: str, control: Connection, batch_size: int) -> None:
    """Publish batches into the ring ``name`` as the parent requests, until it sends None.

    The writer first fills the ring once, so that every page is mapped, as in a feed
    that has run for a while. The parent should drain those records with
    :func:`drain_ring` before its first round.
    """
    batch = make_ticks(batch_size)
    with Ring.attach(name, writable=True) as ring, ring.writer() as writer:
        warm = make_ticks(min(WARM_BATCH, ring.capacity))
        for _ in range(ring.capacity // len(warm)):
            writer.publish(warm)
        _serve(control, lambda: writer.publish(batch))


def write_queue(queue: Queue[Any], control: Connection, batch_size: int) -> None:
    """Put batches on ``queue`` as the parent requests, until it sends None."""
    batch = make_ticks(batch_size)
    _serve(control, lambda: queue.put(batch))


def write_pipe(data: Connection, control: Connection, batch_size: int) -> None:
    """Send the bytes of batches on ``data`` as the parent requests, until it sends None."""
    # A uint8 view exports the batch's memory through the buffer protocol, which
    # numpy cannot do for a dtype with datetime64 fields.
    payload = make_ticks(batch_size).view(np.uint8)
    _serve(control, lambda: data.send_bytes(payload))


def _serve(control: Connection, send_one: Any) -> None:
    control.send("ready")
    while control.poll(CHILD_SECONDS):
        batches = control.recv()
        if batches is None:
            return
        for _ in range(batches):
            send_one()


# ----------------------------------------------------------------- receivers (this process)


def drain_ring(reader: RingReader) -> int:
    """Copy out every record published so far, which maps the ring's pages here, and return the count."""
    drained = 0
    while True:
        batch = reader.read_nowait()
        if len(batch) == 0:
            return drained
        drained += len(batch.copy())


def receive_ring(reader: RingReader, total: int, deadline: float, *, copy: bool) -> Received:
    """Read ``total`` records from ``reader`` until ``deadline`` (a time.monotonic() time).

    ``reader.read()`` waits with the reader's wait strategy. ``copy`` copies each
    batch out of shared memory before checking that it is intact.
    """
    received = torn = last_token = 0
    lost_before = reader.lost
    while received + torn + reader.lost - lost_before < total:
        batch = reader.read(timeout=max(0.0, deadline - time.monotonic()))
        count = len(batch)
        if count == 0:
            if time.monotonic() > deadline:
                break
            continue

        if copy:
            batch = batch.copy()
        token = int(batch["instrument_token"][-1])
        del batch
        if reader.intact():
            received += count
            last_token = token
        else:
            torn += count
    return Received(records=received, last_token=last_token, lost=reader.lost - lost_before, torn=torn)


def receive_queue(queue: Queue[Any], total: int, deadline: float) -> Received:
    """Get batches from ``queue`` until ``total`` records came or ``deadline`` passed."""
    received = last_token = 0
    while received < total:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            batch = queue.get(timeout=remaining)
        except queue_module.Empty:
            break
        received += len(batch)
        last_token = int(batch["instrument_token"][-1])
    return Received(records=received, last_token=last_token)


def receive_pipe(data: Connection, total: int, deadline: float) -> Received:
    """Receive batches from ``data`` until ``total`` records came or ``deadline`` passed."""
    received = last_token = 0
    while received < total:
        if not data.poll(max(0.0, deadline - time.monotonic())):
            break
        batch = np.frombuffer(data.recv_bytes(), dtype=TICK_DTYPE)
        received += len(batch)
        last_token = int(batch["instrument_token"][-1])
    return Received(records=received, last_token=last_token)
