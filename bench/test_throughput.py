"""Records per second from a writer process to this process: ring, Queue and Pipe side by side."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

import pytest

from kitefeed.parsers import TICK_DTYPE
from kitefeed.ringbuf import Ring, Wait

from . import transports
from .report import Report

SPAWN = multiprocessing.get_context("spawn")

MAX_RECORDS = 200_000
"""Records moved per round at most."""

MAX_BATCHES = 20_000
"""Batches sent per round at most, which bounds the slow single-record rounds."""

ROUNDS = 5
"""Measured rounds per benchmark, after one warm-up round."""

ROUND_SECONDS = 20.0
"""Time after which a round gives up. A healthy round takes well under 2 s."""

RING_WAIT = Wait.BUSY
"""Wait strategy of the ring reader: polling without system calls or sleeps."""

TRANSPORTS = ["ring", "ring-copy", "queue", "pipe"]
BATCH_SIZES = [1, 50, 500]

Receive = Callable[[int, float], transports.Received]
"""A receiver: takes the records to expect and a time.monotonic() deadline."""


def round_size(batch_size: int) -> tuple[int, int]:
    """Return the batches and records one round moves for ``batch_size``."""
    batches = min(MAX_BATCHES, MAX_RECORDS // batch_size)
    return batches, batches * batch_size


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_throughput(
    benchmark: Any,
    report: Report,
    ring_name: str,
    start_process: Callable[..., BaseProcess],
    transport: str,
    batch_size: int,
) -> None:
    batches, total = round_size(batch_size)
    benchmark.group = f"throughput, batch of {batch_size}"
    rounds: list[transports.Received] = []

    with contextlib.ExitStack() as stack:
        control, child_control = SPAWN.Pipe()
        stack.callback(control.close)
        receive, target, first_arg, prepare = _open_endpoints(stack, transport, ring_name, total)

        start_process(target, first_arg, child_control, batch_size)
        child_control.close()
        assert control.poll(60), "the writer process did not start within 60 s"
        assert control.recv() == "ready"
        stack.callback(control.send, None)
        prepare()

        def one_round() -> None:
            deadline = time.monotonic() + ROUND_SECONDS
            control.send(batches)
            rounds.append(receive(total, deadline))

        benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1, iterations=1)

    median = benchmark.stats.stats.median
    lost = sum(result.lost + result.torn for result in rounds)
    strategy = RING_WAIT.name if transport.startswith("ring") else "-"
    benchmark.extra_info.update(
        records_per_round=total, records_per_s=round(total / median), lost_or_torn=lost, reader=strategy
    )
    report.add_throughput(transport, batch_size, total / median, lost, strategy)

    for result in rounds:
        assert result.records == total, result
        assert result.last_token == batch_size, result
        assert result.lost == 0
        assert result.torn == 0


def _open_endpoints(
    stack: contextlib.ExitStack, transport: str, ring_name: str, total: int
) -> tuple[Receive, Callable[..., None], Any, Callable[[], Any]]:
    # Returns this process's receiver, the writer's target and first argument, and
    # what to do once the writer is ready. Everything opened here is closed by `stack`.
    if transport in ("ring", "ring-copy"):
        # The ring has room for a whole round, so the writer cannot lap the reader.
        ring = stack.enter_context(Ring.create(ring_name, TICK_DTYPE, 1 << (total - 1).bit_length()))
        reader = stack.enter_context(ring.reader(wait=RING_WAIT))
        copy = transport == "ring-copy"

        def receive_ring(total: int, deadline: float) -> transports.Received:
            return transports.receive_ring(reader, total, deadline, copy=copy)

        return receive_ring, transports.write_ring, ring.name, lambda: transports.drain_ring(reader)

    if transport == "queue":
        queue = SPAWN.Queue()
        stack.callback(queue.join_thread)
        stack.callback(queue.close)

        def receive_queue(total: int, deadline: float) -> transports.Received:
            return transports.receive_queue(queue, total, deadline)

        return receive_queue, transports.write_queue, queue, lambda: None

    data, child_data = SPAWN.Pipe(duplex=False)
    stack.callback(data.close)
    stack.callback(child_data.close)

    def receive_pipe(total: int, deadline: float) -> transports.Received:
        return transports.receive_pipe(data, total, deadline)

    return receive_pipe, transports.write_pipe, child_data, lambda: None
