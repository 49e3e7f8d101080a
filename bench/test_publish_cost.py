"""The writer's cost per publish() with no reader waiting, against bare numpy copies of the batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kitefeed.parsers import TICK_DTYPE
from kitefeed.ringbuf import Ring

from .report import Report
from .ticks import make_ticks

CAPACITY = 1024
"""Ring slots: 272 KiB of records, which stay in the L2 cache like the copy's target."""

VOID_DTYPE = np.dtype((np.void, TICK_DTYPE.itemsize))
"""Opaque 272-byte records, which numpy copies with memcpy instead of field by field."""

OPERATIONS = ["publish", "copy", "copy-void"]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("batch_size", [1, 50])
def test_publish_cost(benchmark: Any, report: Report, ring_name: str, batch_size: int, operation: str) -> None:
    benchmark.group = f"publish cost, batch of {batch_size}"
    batch = make_ticks(batch_size)

    if operation == "publish":
        with Ring.create(ring_name, TICK_DTYPE, CAPACITY) as ring, ring.writer() as writer:
            # One lap first, so every page of the ring is mapped before timing.
            for _ in range(CAPACITY // batch_size + 1):
                writer.publish(batch)
            benchmark(writer.publish, batch)
    else:
        target = np.zeros(CAPACITY, dtype=TICK_DTYPE)
        if operation == "copy":
            # The same-dtype slice assignment that publish() does.
            benchmark(target.__setitem__, slice(0, batch_size), batch)
        else:
            target_void, batch_void = target.view(VOID_DTYPE), batch.view(VOID_DTYPE)
            benchmark(target_void.__setitem__, slice(0, batch_size), batch_void)
        assert (target[:batch_size] == batch).all()

    median_ns = benchmark.stats.stats.median * 1e9
    benchmark.extra_info["median_ns"] = round(median_ns)
    report.add_publish(operation, batch_size, median_ns)
