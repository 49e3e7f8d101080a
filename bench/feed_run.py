"""One timed run of the whole feed: simulator process -> Feed workers -> rings -> a reader here.

The reader runs in the calling thread. The feed's CPU time is that of its worker
processes plus every thread of this process except the caller's, which are the
supervisor's monitor and job threads, so the reader's own CPU time stays out of it.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from kitefeed import Feed
from kitefeed.parsers import Mode
from kitefeed.ringbuf import list_segments, remove_segments

from .procstat import process_cpu_seconds, thread_cpu_seconds
from .sim_process import SimCounters, request_counters

LATENCY_SAMPLES = 1 << 23
"""Records whose arrival-to-reader latency is kept, at most (64 MiB of int64)."""

READ_TIMEOUT = 0.1
"""Seconds one read waits, so the loop checks its deadline at least this often."""

DRAIN_SECONDS = 5.0
"""Time the reader keeps reading after the window, to count what was still in the rings."""


@dataclass
class FeedRunResult:
    """Counters of one measured window. Times are in seconds, rates per second."""

    keys: int
    instruments: int
    seconds: float
    ticks: int
    """Records that the reader got during the window."""
    offered: int
    """Ticks that the simulator queued during the window."""
    offered_frames: int
    """Binary messages with ticks that the simulator sent during the window."""
    lost: int
    """Records lost by the reader (overwritten in a ring before it read them), over the whole run."""
    dropped: int
    """Messages the simulator dropped because a connection read too slowly, over the whole run."""
    worker_cpu: float
    supervisor_cpu: float
    reader_cpu: float
    sim_cpu: float
    latency_ns: np.ndarray
    """Arrival-in-worker to read-by-reader latency of each sampled record, int64 ns, 1-D."""
    restarts: int
    parse_errors: int

    @property
    def ticks_per_s(self) -> float:
        return self.ticks / self.seconds

    @property
    def offered_per_s(self) -> float:
        return self.offered / self.seconds

    @property
    def feed_cpu(self) -> float:
        """CPU seconds of the workers and the supervisor together."""
        return self.worker_cpu + self.supervisor_cpu

    @property
    def cpu_per_tick(self) -> float:
        """Feed CPU seconds per record read, or NaN when no record was read."""
        return self.feed_cpu / self.ticks if self.ticks else float("nan")


@dataclass
class _Snapshot:
    at: float
    workers: float
    process: float
    reader: float
    sim: SimCounters


def feed_name() -> str:
    """Return a feed name unique to this process and call."""
    return f"kfbench_{os.getpid()}_{secrets.token_hex(4)}"


def run_feed(
    sim_url: str,
    sim_control: Connection,
    credentials: dict[str, str],
    tokens: list[int],
    *,
    mode: Mode = Mode.FULL,
    warmup: float,
    seconds: float,
    replay_packets: int = 0,
) -> FeedRunResult:
    """Subscribe ``tokens`` in ``mode`` over every key of ``credentials`` and read for ``seconds``.

    The first ``warmup`` seconds are read but not counted. ``replay_packets`` is that of
    the simulator process (see :func:`~bench.sim_process.serve`): the ticks in each
    message it replays, or 0 when it sends the random walk of the subscribed instruments. Removes the feed's shared
    memory before returning, also after an error, and raises AssertionError if any was
    left behind.
    """
    name = feed_name()
    try:
        with Feed(credentials, name=name, url=sim_url) as feed:
            result = _measure(feed, sim_control, tokens, mode, warmup, seconds)
    finally:
        prefix = f"kitefeed-{name}-"
        leftovers = list_segments(prefix)
        remove_segments(prefix)
        assert leftovers == [], leftovers

    if replay_packets:
        result.offered = result.offered_frames * replay_packets
    return result


def _measure(
    feed: Feed,
    sim_control: Connection,
    tokens: list[int],
    mode: Mode,
    warmup: float,
    seconds: float,
) -> FeedRunResult:
    worker_pids = [pid for pid in feed.worker_pids().values() if pid is not None]
    reader_tid = threading.get_native_id()
    latency = np.empty(LATENCY_SAMPLES, dtype=np.int64)

    def snapshot() -> _Snapshot:
        return _Snapshot(
            at=time.monotonic(),
            workers=sum(process_cpu_seconds(pid) for pid in worker_pids),
            process=process_cpu_seconds(os.getpid()),
            reader=thread_cpu_seconds(os.getpid(), reader_tid),
            sim=request_counters(sim_control),
        )

    feed.subscribe(tokens, mode)
    with feed.open_reader() as reader:
        # Warm-up: connections open, the snapshots of the subscriptions arrive, and the
        # ring pages are touched for the first time.
        deadline = time.monotonic() + warmup
        while time.monotonic() < deadline:
            reader.read(READ_TIMEOUT)

        start = snapshot()
        read_at_start = reader.stats().read
        sampled = 0
        deadline = start.at + seconds
        while time.monotonic() < deadline:
            batch = reader.read(READ_TIMEOUT)
            now_ns = time.time_ns()
            count = min(len(batch), LATENCY_SAMPLES - sampled)
            if count:
                # recv_time is time.time_ns() at the frame's arrival in the worker.
                stamps = batch["recv_time"][:count].view(np.int64)
                np.subtract(now_ns, stamps, out=latency[sampled : sampled + count])
                sampled += count
        end = snapshot()
        read_in_window = reader.stats().read - read_at_start

        # Records still in the rings at the end of the window are read, so that a loss
        # among them shows in the counters too.
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and len(reader.read(READ_TIMEOUT)):
            pass
        lost = reader.stats().lost

    stats = feed.stats()
    final = request_counters(sim_control)
    return FeedRunResult(
        keys=len(feed.keys),
        instruments=len(tokens),
        seconds=end.at - start.at,
        ticks=read_in_window,
        offered=end.sim.packets - start.sim.packets,
        offered_frames=end.sim.frames - start.sim.frames,
        lost=lost,
        dropped=final.dropped,
        worker_cpu=end.workers - start.workers,
        supervisor_cpu=(end.process - start.process) - (end.reader - start.reader),
        reader_cpu=end.reader - start.reader,
        sim_cpu=end.sim.cpu_seconds - start.sim.cpu_seconds,
        latency_ns=latency[:sampled].copy(),
        restarts=sum(key.worker_restarts for key in stats.keys),
        parse_errors=sum(key.parse_errors for key in stats.keys),
    )
