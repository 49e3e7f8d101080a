"""Fixtures of the benchmarks: unique ring names, child processes, and the summary of results.

``pytest bench`` collects the ``test_*.py`` files here with pytest's default file
pattern, so the configuration in pyproject.toml stays the one of ``tests/``.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from typing import Any

import pytest

from kitefeed.ringbuf import list_segments, remove_segments

from .report import Report

SPAWN = multiprocessing.get_context("spawn")
"""Children start with "spawn", as kitefeed's own worker processes do."""

JOIN_SECONDS = 10.0
"""Time a finished benchmark gives each child to exit before killing it."""

_REPORT = pytest.StashKey[Report]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REPORT] = Report(load_at_start=os.getloadavg()[0])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is None or report.empty:
        return
    terminalreporter.section("kitefeed ring: throughput ratios, latency percentiles, publish cost")
    report.load_at_end = os.getloadavg()[0]
    for line in report.lines():
        terminalreporter.write_line(line)


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """The results of this run, printed after the pytest-benchmark tables."""
    return request.config.stash[_REPORT]


@pytest.fixture
def ring_name() -> Iterator[str]:
    """A segment name unique to this benchmark. The benchmark fails if the segment is left."""
    prefix = f"kfbench-{os.getpid()}-{secrets.token_hex(4)}-"
    yield prefix + "ring"

    # Remove leftovers before failing, so that a failure leaks nothing either.
    leftovers = list_segments(prefix)
    remove_segments(prefix)
    assert leftovers == []


@pytest.fixture
def start_process() -> Iterator[Callable[..., BaseProcess]]:
    """Start child processes with "spawn" and make sure each has exited when the benchmark ends."""
    started: list[BaseProcess] = []

    def start(target: Callable[..., None], *args: Any) -> BaseProcess:
        process = SPAWN.Process(target=target, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start

    for process in started:
        process.join(timeout=JOIN_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(timeout=JOIN_SECONDS)
        process.close()
