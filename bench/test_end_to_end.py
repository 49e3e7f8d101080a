"""End to end: simulator process -> Feed with 1, 2 or 4 keys -> rings -> a reader here, and KiteTicker.

Each run starts a new simulator process and a new feed. See docs/benchmarks.md for the
method and the results.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import pytest

from . import sim_process
from .feed_run import FeedRunResult, run_feed
from .kiteticker_process import run_ticker
from .procstat import process_cpu_seconds
from .report import EndToEnd, Report, percentiles_ns

SPAWN = multiprocessing.get_context("spawn")

SECONDS = float(os.environ.get("KITEFEED_BENCH_E2E_SECONDS", "10"))
"""Length of each measured window."""

WARMUP = 2.0
"""Seconds read before a window starts: connections open, snapshots arrive, ring pages are touched."""

PROBE_SECONDS = 3.0
"""Length of the short runs that look for the highest rate without loss."""

REPLAY_PACKETS = 3000
"""Full-mode ticks in each message of the throughput runs: Kite's limit of one connection."""

RATES = [3_000_000, 2_400_000, 2_000_000, 1_600_000, 1_200_000, 800_000]
"""Offered ticks per second tried in the throughput runs, highest first, over all keys."""

SAME_LOAD_INSTRUMENTS = 3000
"""Instruments of the comparison with KiteTicker, in full mode on one key and connection."""

SAME_LOAD_INTERVAL = 0.1
"""Push cycle of the comparison with KiteTicker: every instrument ticks every cycle."""

START_SECONDS = 60.0
"""Time a child process gets to start listening or connecting."""


def credentials(keys: int) -> dict[str, str]:
    return {f"bench_key_{index}": f"bench_token_{index}" for index in range(keys)}


@contextlib.contextmanager
def simulator_process(keys: int, tick_interval: float, replay_packets: int = 0) -> Iterator[tuple[str, Connection]]:
    """Run :func:`sim_process.serve` in a child process; yield its URL and control pipe."""
    control, child_control = SPAWN.Pipe()
    process = SPAWN.Process(
        target=sim_process.serve, args=(child_control, credentials(keys), tick_interval, replay_packets), daemon=True
    )
    process.start()
    child_control.close()
    try:
        assert control.poll(START_SECONDS), "the simulator process did not start listening within 60 s"
        port = control.recv()
        yield f"ws://127.0.0.1:{port}", control
    finally:
        with contextlib.suppress(OSError):
            control.send(None)
        control.close()
        _join(process)


def _join(process: multiprocessing.process.BaseProcess) -> None:
    process.join(timeout=10.0)
    if process.is_alive():
        process.kill()
        process.join(timeout=10.0)
    process.close()


def replay_run(keys: int, rate: int, seconds: float) -> FeedRunResult:
    """Measure a feed of ``keys`` keys that receives ``rate`` ticks/s in all, in messages of 3000."""
    # Each key has one connection, and each connection gets one message per cycle.
    tick_interval = keys * REPLAY_PACKETS / rate
    with simulator_process(keys, tick_interval, REPLAY_PACKETS) as (url, control):
        tokens = sim_process.bench_tokens(keys)
        return run_feed(url, control, credentials(keys), tokens, warmup=WARMUP, seconds=seconds, replay_packets=REPLAY_PACKETS)


def lossless(result: FeedRunResult) -> bool:
    return result.lost == 0 and result.dropped == 0 and result.restarts == 0


def summary(result: FeedRunResult) -> EndToEnd:
    return EndToEnd(
        ticks_per_s=result.ticks_per_s,
        offered_per_s=result.offered_per_s,
        cpu_per_tick_ns=result.cpu_per_tick * 1e9,
        lost=result.lost + result.dropped,
        latency_ns={key: value for key, value in percentiles_ns(result.latency_ns).items() if key in ("p50", "p99")},
    )


def extra_info(result: FeedRunResult) -> dict[str, Any]:
    return {
        "ticks_per_s": round(result.ticks_per_s),
        "offered_per_s": round(result.offered_per_s),
        "cpu_ns_per_tick": round(result.cpu_per_tick * 1e9, 1),
        "worker_cpu_s": result.worker_cpu,
        "supervisor_cpu_s": result.supervisor_cpu,
        "reader_cpu_s": result.reader_cpu,
        "simulator_cpu_s": result.sim_cpu,
        "lost": result.lost,
        "simulator_dropped": result.dropped,
        "latency_ns": percentiles_ns(result.latency_ns) if len(result.latency_ns) else {},
    }


@pytest.mark.parametrize("keys", [1, 2, 4])
def test_feed_throughput(benchmark: Any, report: Report, keys: int) -> None:
    benchmark.group = "end to end, highest lossless rate"

    # Short probes from the highest rate down find the first rate without loss.
    rates = iter(RATES)
    rate = next(rates)
    while not lossless(replay_run(keys, rate, PROBE_SECONDS)):
        rate = next(rates, 0)
        assert rate, f"no rate of {RATES} was read without loss in a {PROBE_SECONDS} s probe"

    # The measured window may still lose at that rate; then it steps down once.
    results: list[FeedRunResult] = []

    def measure() -> None:
        results.append(replay_run(keys, rate, SECONDS))

    def measure_with_retry() -> None:
        nonlocal rate
        measure()
        if not lossless(results[-1]):
            rate = next(rates, rate)
            measure()

    benchmark.pedantic(measure_with_retry, rounds=1, iterations=1)
    result = results[-1]
    benchmark.extra_info.update(extra_info(result), keys=keys, offered_rate=rate)
    report.add_end_to_end(f"kitefeed, {keys} key{'s' if keys > 1 else ''}, highest lossless rate", summary(result))

    assert result.restarts == 0
    assert result.parse_errors == 0
    assert result.lost == 0
    assert result.dropped == 0


def test_feed_same_load(benchmark: Any, report: Report) -> None:
    benchmark.group = "end to end, kitefeed vs KiteTicker"
    tokens = sim_process.bench_tokens(SAME_LOAD_INSTRUMENTS)
    results: list[FeedRunResult] = []

    def measure() -> None:
        with simulator_process(1, SAME_LOAD_INTERVAL) as (url, control):
            results.append(run_feed(url, control, credentials(1), tokens, warmup=WARMUP, seconds=SECONDS))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    result = results[0]
    benchmark.extra_info.update(extra_info(result))
    report.add_end_to_end("kitefeed, same load", summary(result))

    assert result.restarts == 0
    assert result.lost == 0
    assert result.dropped == 0


def test_kiteticker_same_load(benchmark: Any, report: Report) -> None:
    benchmark.group = "end to end, kitefeed vs KiteTicker"
    tokens = sim_process.bench_tokens(SAME_LOAD_INSTRUMENTS)
    results: list[EndToEnd] = []
    dropped: list[int] = []

    def measure() -> None:
        with simulator_process(1, SAME_LOAD_INTERVAL) as (url, sim_control):
            api_key, access_token = next(iter(credentials(1).items()))
            with ticker_process(url, api_key, access_token, tokens) as (ticker_control, pid):
                results.append(_measure_ticker(sim_control, ticker_control, pid, len(tokens)))
                dropped.append(sim_process.request_counters(sim_control).dropped)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    result = results[0]
    benchmark.extra_info.update(
        ticks_per_s=round(result.ticks_per_s),
        offered_per_s=round(result.offered_per_s),
        cpu_ns_per_tick=round(result.cpu_per_tick_ns, 1),
        simulator_dropped=dropped[0],
    )
    report.add_end_to_end("kiteticker", result)

    assert dropped[0] == 0


@contextlib.contextmanager
def ticker_process(url: str, api_key: str, access_token: str, tokens: list[int]) -> Iterator[tuple[Connection, int]]:
    """Run :func:`run_ticker` in a child process; yield its control pipe and pid."""
    control, child_control = SPAWN.Pipe()
    process = SPAWN.Process(target=run_ticker, args=(child_control, url, api_key, access_token, tokens), daemon=True)
    process.start()
    child_control.close()
    try:
        assert process.pid is not None
        yield control, process.pid
    finally:
        with contextlib.suppress(OSError):
            control.send(None)
        control.close()
        _join(process)


def _ticker_counters(control: Connection) -> tuple[int, float]:
    control.send("counters")
    assert control.poll(30.0), "KiteTicker's process did not answer within 30 s"
    ticks, cpu = control.recv()
    return ticks, cpu


def _measure_ticker(sim_control: Connection, control: Connection, pid: int, instruments: int) -> EndToEnd:
    # Wait until the first cycle's ticks arrived, then warm up as the feed does.
    deadline = time.monotonic() + START_SECONDS
    while _ticker_counters(control)[0] < instruments:
        assert time.monotonic() < deadline, "KiteTicker received no ticks within 60 s"
        time.sleep(0.1)
    time.sleep(WARMUP)

    sim_start = sim_process.request_counters(sim_control)
    ticks_start, cpu_start = _ticker_counters(control)
    started = time.monotonic()
    time.sleep(SECONDS)
    ticks_end, cpu_end = _ticker_counters(control)
    elapsed = time.monotonic() - started
    sim_end = sim_process.request_counters(sim_control)

    ticks = ticks_end - ticks_start
    assert process_cpu_seconds(pid) >= cpu_end
    return EndToEnd(
        ticks_per_s=ticks / elapsed,
        offered_per_s=(sim_end.packets - sim_start.packets) / elapsed,
        cpu_per_tick_ns=(cpu_end - cpu_start) / ticks * 1e9 if ticks else float("nan"),
        lost=sim_end.dropped,
    )
