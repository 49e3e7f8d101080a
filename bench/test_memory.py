"""Resident memory of a running feed's workers and supervisor, sampled over a long run.

``KITEFEED_BENCH_MEMORY_SECONDS`` sets the run's length (default 60 s; 600 for the
10-minute run in docs/benchmarks.md, which needs ``--timeout`` above 600 as well).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pytest

from kitefeed import Feed

from . import sim_process
from .feed_run import feed_name
from .procstat import memory_kib
from .report import Report
from .test_end_to_end import REPLAY_PACKETS, credentials, simulator_process

SECONDS = float(os.environ.get("KITEFEED_BENCH_MEMORY_SECONDS", "60"))
"""Length of the sampled part of the run."""

SAMPLE_SECONDS = 5.0
"""Time between two samples of every process's memory."""

KEYS = 2
RATE = 200_000
"""Ticks per second over both keys: each key's ring of 262,144 records wraps about every 2.6 s."""

WRAP_SECONDS = 60.0
"""Time the rings get to wrap once before sampling starts."""

MAX_GROWTH_KIB = 16 * 1024
"""Largest rise of any process's VmRSS from the first sample to the last that passes."""


def test_memory_long_run(benchmark: Any, report: Report, request: pytest.FixtureRequest) -> None:
    timeout = request.config.getoption("--timeout", default=None)
    if timeout and SECONDS + 60 > float(timeout):
        pytest.fail(f"a run of {SECONDS:g} s needs pytest --timeout={int(SECONDS) + 120} or more, found {timeout}")

    benchmark.group = "memory"
    samples: dict[str, list[tuple[float, dict[str, int]]]] = {}
    ring_bytes: list[int] = []

    def run() -> None:
        tick_interval = KEYS * REPLAY_PACKETS / RATE
        with simulator_process(KEYS, tick_interval, REPLAY_PACKETS) as (url, _control):
            with Feed(credentials(KEYS), name=feed_name(), url=url) as feed:
                feed.subscribe(sim_process.bench_tokens(KEYS), "full")
                ring_bytes.append(feed.ring_bytes)
                _sample_feed(feed, samples)

    benchmark.pedantic(run, rounds=1, iterations=1)

    lines = [f"memory over {SECONDS:g} s, {KEYS} keys, {RATE:,} ticks/s, rings {ring_bytes[0] / 2**20:.0f} MiB in all:"]
    for process, series in samples.items():
        times = np.array([at for at, _ in series])
        rss = np.array([memory["VmRSS"] for _, memory in series], dtype=np.float64)
        anon = np.array([memory["RssAnon"] for _, memory in series], dtype=np.float64)
        slope = np.polyfit(times, rss, 1)[0] * 60 if len(series) > 1 else 0.0
        anon_slope = np.polyfit(times, anon, 1)[0] * 60 if len(series) > 1 else 0.0
        lines.append(
            f"  {process:<12} VmRSS first {rss[0] / 1024:.1f} MiB, last {rss[-1] / 1024:.1f}, max {rss.max() / 1024:.1f}, "
            f"slope {slope:+.1f} KiB/min; RssAnon {anon[0] / 1024:.1f} -> {anon[-1] / 1024:.1f} MiB, slope {anon_slope:+.1f} KiB/min; "
            f"RssShmem {series[-1][1]['RssShmem'] / 1024:.1f} MiB"
        )
        benchmark.extra_info[process] = {
            "vmrss_kib": rss.astype(int).tolist(),
            "rssanon_kib": anon.astype(int).tolist(),
            "slope_kib_per_min": round(slope, 1),
        }
    report.memory.extend(lines)

    assert len(samples) == KEYS + 1
    for process, series in samples.items():
        growth = series[-1][1]["VmRSS"] - series[0][1]["VmRSS"]
        assert growth < MAX_GROWTH_KIB, (process, growth)


def _sample_feed(feed: Feed, samples: dict[str, list[tuple[float, dict[str, int]]]]) -> None:
    """Read the feed here and sample the memory of its processes every :data:`SAMPLE_SECONDS`."""
    pids = {f"worker {index}": pid for index, pid in enumerate(feed.worker_pids().values()) if pid is not None}
    pids["supervisor"] = os.getpid()

    with feed.open_reader() as reader:
        # Sampling starts once every ring has wrapped, so every ring page is resident in
        # the workers and the reader, as in a feed that has run for a while.
        deadline = time.monotonic() + WRAP_SECONDS
        while min(key.ring_position for key in feed.stats().keys) < feed.ring_capacity:
            assert time.monotonic() < deadline, "the rings did not wrap within 60 s"
            _read_until(reader, time.monotonic() + 1.0)

        started = time.monotonic()
        next_sample = started
        while True:
            now = time.monotonic()
            for process, pid in pids.items():
                samples.setdefault(process, []).append((now - started, memory_kib(pid)))
            if now - started >= SECONDS:
                break
            next_sample += SAMPLE_SECONDS
            _read_until(reader, next_sample)

        assert reader.stats().lost == 0
        assert sum(key.worker_restarts for key in feed.stats().keys) == 0


def _read_until(reader: Any, deadline: float) -> None:
    # Summing a field touches every record, so the reader maps the ring pages as a real consumer does.
    while time.monotonic() < deadline:
        batch = reader.read(min(0.1, max(0.0, deadline - time.monotonic())))
        batch["last_price"].sum()
