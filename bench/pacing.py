"""Both ends of the latency benchmarks: a paced, time-stamping writer and a timing reader."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection

import numpy as np

from kitefeed.ringbuf import Ring, RingReader

from .ticks import make_ticks

CHILD_SECONDS = 60.0
"""Time the writer waits for the reader's start signal before it gives up and exits."""

SLEEP_MARGIN_NS = 200_000
"""Time before a publish at which a long wait stops sleeping and starts spinning."""


def write_stamped(name: str, control: Connection, samples: int, interval_ns: int) -> None:
    """Publish ``samples`` single records into the ring ``name``, ``interval_ns`` apart.

    Each record's ``recv_time`` is set to :func:`time.monotonic_ns` right before
    ``publish()``. The writer sends "ready" on ``control``, waits for the reader to
    send "go", and sends "done" after the last publish.
    """
    record = make_ticks(1)
    stamp = record["recv_time"].view(np.int64)
    with Ring.attach(name, writable=True) as ring, ring.writer() as writer:
        control.send("ready")
        if not control.poll(CHILD_SECONDS):
            return
        control.recv()

        due_ns = time.monotonic_ns()
        for _ in range(samples):
            due_ns += interval_ns
            _wait_until(due_ns)
            stamp[0] = time.monotonic_ns()
            writer.publish(record)
        control.send("done")


def _wait_until(due_ns: int) -> None:
    # Sleeping is off by the timer slack (50 µs by default), so the last stretch spins.
    early_ns = due_ns - time.monotonic_ns() - SLEEP_MARGIN_NS
    if early_ns > 0:
        time.sleep(early_ns / 1e9)
    while time.monotonic_ns() < due_ns:
        pass


def time_records(reader: RingReader, samples: int, deadline: float) -> tuple[np.ndarray, np.ndarray]:
    """Read ``samples`` records and time each from its stamp to two moments of its arrival.

    Returns two new 1-D int64 arrays of up to ``samples`` latencies in ns, shorter when
    ``deadline`` (a :func:`time.monotonic` time) passed first: to the moment the
    reader sees that the record is published (``wait_for_records()`` returns, with
    the reader's wait strategy), and to the moment ``read_nowait()`` has returned the
    batch that contains it.
    """
    visible = np.empty(samples, dtype=np.int64)
    in_hand = np.empty(samples, dtype=np.int64)
    count = 0
    while count < samples and time.monotonic() < deadline:
        if not reader.wait_for_records(timeout=0.1):
            continue
        seen_ns = time.monotonic_ns()
        batch = reader.read_nowait()
        returned_ns = time.monotonic_ns()

        stamps = batch["recv_time"].view(np.int64)[: samples - count]
        visible[count : count + len(stamps)] = seen_ns - stamps
        in_hand[count : count + len(stamps)] = returned_ns - stamps
        count += len(stamps)
    return visible[:count], in_hand[:count]
