"""Latency from publish() in a writer process to the record reaching a reader in this process.

pytest-benchmark times the whole measurement once (``rounds=1``). The percentiles
of the individual latencies are in ``extra_info`` and in the summary after the tables.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

import pytest

from kitefeed.parsers import TICK_DTYPE
from kitefeed.ringbuf import Ring

from .pacing import time_records, write_stamped
from .report import Report
from .ticks import open_ring_reader, wait_strategies

SPAWN = multiprocessing.get_context("spawn")

CAPACITY = 1 << 16
"""Ring slots, more than the records of one benchmark, so no record is overwritten."""

MEASURE_SECONDS = 30.0
"""Time after which a measurement gives up. A healthy one takes at most about 3 s."""


@pytest.mark.parametrize(
    ("name", "samples", "warmup", "interval_us"),
    [("publish-to-visible", 20_000, 500, 20), ("wake-up", 2_000, 50, 1_000)],
)
def test_latency(
    benchmark: Any,
    report: Report,
    ring_name: str,
    start_process: Callable[..., BaseProcess],
    name: str,
    samples: int,
    warmup: int,
    interval_us: int,
) -> None:
    benchmark.group = "latency"
    strategy = _strategy(name)
    total = warmup + samples

    with Ring.create(ring_name, TICK_DTYPE, CAPACITY) as ring, open_ring_reader(ring, strategy) as reader:
        control, child_control = SPAWN.Pipe()
        with control:
            start_process(write_stamped, ring.name, child_control, total, interval_us * 1000)
            child_control.close()
            assert control.poll(60), "the writer process did not start within 60 s"
            assert control.recv() == "ready"

            def measure() -> Any:
                control.send("go")
                return time_records(reader, total, time.monotonic() + MEASURE_SECONDS, busy=strategy == "poll-busy")

            latencies = benchmark.pedantic(measure, rounds=1, iterations=1)
            lost = reader.lost

    assert len(latencies) == total
    assert lost == 0

    # The first records arrive while caches and branch predictors are still cold.
    result = report.add_latency(f"{name} latency", latencies[warmup:], strategy)
    benchmark.extra_info.update({f"{key}_ns": value for key, value in result.items()})
    benchmark.extra_info.update(samples=samples, interval_us=interval_us, reader=strategy)


def _strategy(name: str) -> str:
    # The visible-latency reader busy-polls; the wake-up reader sleeps between records.
    # Before the ring had wait strategies, "poll-busy" loops on read_nowait() and
    # "poll" is read(), which polls for 50 µs and then sleeps up to 0.5 ms per poll.
    strategies = wait_strategies()
    if name == "publish-to-visible":
        return "BUSY" if "BUSY" in strategies else "poll-busy"
    return "BLOCK" if "BLOCK" in strategies else "poll"
