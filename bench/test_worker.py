"""CPU time of a worker process per 50-packet message: receive, decode and publish.

A simulator in this process replays one 50-packet full-mode message to the worker's
connection every ``TICK_INTERVAL`` seconds, with no random ticks, so each message
wakes the worker. A second variant gets the same message back to back from
:mod:`bench.blaster`, so the worker finds many messages in each read. Each round reads
the worker's CPU time (every thread, from /proc/<pid>/task/*/schedstat, in ns) and its
message count before and after ``WINDOW_SECONDS``, and divides. The worker's idle work
(a liveness stamp every 0.25 s, one heartbeat a second) is included, which adds an
estimated 0.1 us per message at the rates reached here.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np
import pytest

from kitefeed.engine import Feed
from kitefeed.engine.transport import TRANSPORTS
from kitefeed.parsers import encode_frame
from kitefeed.sim import Simulator

from . import blaster
from .conftest import SPAWN
from .ticks import make_ticks

PACKETS = 50
TICK_INTERVAL = 0.0005
"""Seconds between replayed messages; the simulator reaches a lower rate when it cannot keep up."""

WINDOW_SECONDS = 2.0
ROUNDS = 5
TARGET_US = 10.0
"""Maximum CPU time of the worker per 50-packet message, in us."""

CREDENTIALS = {"bench-key": "bench-token"}


def full_message() -> bytes:
    ticks = make_ticks(PACKETS)
    # Valid NSE equity tokens: the low byte is the segment.
    ticks["instrument_token"] = (np.arange(1, PACKETS + 1, dtype=np.uint32) << 8) | 1
    return encode_frame(ticks)


def cpu_ns(pid: int) -> int:
    """Return the CPU time of every thread of ``pid`` so far, in ns."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as file:
            total += int(file.read().split()[0])
    return total


def worker_pid(feed: Feed) -> int:
    pid = next(iter(feed.worker_pids().values()))
    assert pid is not None, "the worker is being restarted"
    return pid


BURST = 32
"""Messages the simulator sends back to back each cycle in the burst variant."""


def measure_worker(benchmark: Any, url: str, transport: str, label: str) -> None:
    """Run the rounds against a server at ``url``, then print and record the medians."""
    results: list[tuple[float, float]] = []
    with Feed(CREDENTIALS, url=url, ring_capacity=1 << 14, transport=transport) as feed:  # type: ignore[arg-type]
        feed.subscribe([(1 << 8) | 1], "full")
        deadline = time.monotonic() + 15
        while feed.stats().frames < 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = worker_pid(feed)

        def measure() -> None:
            frames_before, cpu_before, start = feed.stats().frames, cpu_ns(pid), time.monotonic()
            time.sleep(WINDOW_SECONDS)
            frames_after, cpu_after, end = feed.stats().frames, cpu_ns(pid), time.monotonic()
            frames = frames_after - frames_before
            assert frames > 0, "the worker received no message"
            results.append(((cpu_after - cpu_before) / frames / 1000, frames * PACKETS / (end - start)))

        benchmark.pedantic(measure, rounds=ROUNDS, iterations=1, warmup_rounds=1)
        stats = feed.stats()

    assert stats.parse_errors == 0
    measured = results[1:]  # the warm-up round
    cpu_us = statistics.median(cpu for cpu, _ in measured)
    ticks_per_s = statistics.median(rate for _, rate in measured)
    verdict = "met" if cpu_us <= TARGET_US else "MISSED"
    benchmark.extra_info.update(cpu_us_per_message=cpu_us, ticks_per_s=ticks_per_s)
    print(
        f"\nworker {transport}, {label}: {cpu_us:.1f} us CPU per {PACKETS}-packet message "
        f"(target <= {TARGET_US:g} us: {verdict}), {ticks_per_s:,.0f} ticks/s, "
        f"rounds {[round(cpu, 1) for cpu, _ in measured]}"
    )


@pytest.mark.parametrize("burst", [1, BURST], ids=["paced", "simulator-burst"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_worker_cpu_per_message(benchmark: Any, transport: str, burst: int) -> None:
    interval = TICK_INTERVAL if burst == 1 else 0.005
    with Simulator(
        CREDENTIALS, tick_interval=interval, tick_probability=0.0, replay=[full_message()], replay_burst=burst
    ) as sim:
        measure_worker(benchmark, sim.url, transport, "paced" if burst == 1 else f"simulator bursts of {burst}")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_worker_cpu_per_message_saturated(benchmark: Any, start_process: Any, transport: str) -> None:
    """The same cost when messages arrive back to back, from a server that sends as fast as TCP takes."""
    control, child_control = SPAWN.Pipe()
    start_process(blaster.serve, child_control, full_message(), 3 + ROUNDS * (WINDOW_SECONDS + 0.5))
    child_control.close()
    assert control.poll(30), "the blaster did not start within 30 s"
    port = control.recv()
    control.close()
    measure_worker(benchmark, f"ws://127.0.0.1:{port}", transport, "back to back")
