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
from kitefeed.ringbuf import Ring, Wait

from .pacing import time_records, write_stamped
from .report import Report

SPAWN = multiprocessing.get_context("spawn")

CAPACITY = 1 << 16
"""Ring slots, more than the records of one benchmark, so no record is overwritten."""

MEASURE_SECONDS = 30.0
"""Time after which a measurement gives up. A healthy one takes at most about 3 s."""


# The publish-to-visible reader busy-polls, so it is awake when a record arrives. The
# wake-up reader blocks on the futex, so it is asleep when a record arrives.
@pytest.mark.parametrize(
    ("name", "wait", "samples", "warmup", "interval_us"),
    [("publish-to-visible", Wait.BUSY, 20_000, 500, 20), ("wake-up", Wait.BLOCK, 2_000, 50, 1_000)],
)
def test_latency(
    benchmark: Any,
    report: Report,
    ring_name: str,
    start_process: Callable[..., BaseProcess],
    name: str,
    wait: Wait,
    samples: int,
    warmup: int,
    interval_us: int,
) -> None:
    benchmark.group = "latency"
    total = warmup + samples

    with Ring.create(ring_name, TICK_DTYPE, CAPACITY) as ring, ring.reader(wait=wait) as reader:
        control, child_control = SPAWN.Pipe()
        with control:
            start_process(write_stamped, ring.name, child_control, total, interval_us * 1000)
            child_control.close()
            assert control.poll(60), "the writer process did not start within 60 s"
            assert control.recv() == "ready"

            def measure() -> Any:
                control.send("go")
                return time_records(reader, total, time.monotonic() + MEASURE_SECONDS)

            visible, in_hand = benchmark.pedantic(measure, rounds=1, iterations=1)
            lost = reader.lost

    assert len(visible) == total
    assert lost == 0

    # The first records arrive while caches and branch predictors are still cold.
    result = report.add_latency(f"{name} latency", visible[warmup:], wait.name)
    returned = report.add_latency(f"{name} latency, batch returned", in_hand[warmup:], wait.name)
    benchmark.extra_info.update({f"{key}_ns": value for key, value in result.items()})
    benchmark.extra_info.update({f"returned_{key}_ns": value for key, value in returned.items()})
    benchmark.extra_info.update(samples=samples, interval_us=interval_us, reader=wait.name)

