"""Fixtures of the ring tests: unique segment names checked for leftovers, and child processes."""

from __future__ import annotations

import multiprocessing
import os
import secrets
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from typing import Any

import pytest

from kitefeed.ringbuf import list_segments, remove_segments

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def prefix() -> Iterator[str]:
    """A segment-name prefix unique to this test; the test fails if a segment is left."""
    prefix = f"kftest-{os.getpid()}-{secrets.token_hex(4)}-"
    yield prefix

    # Remove leftovers before failing, so that a failure leaks nothing either.
    leftovers = list_segments(prefix)
    remove_segments(prefix)
    assert leftovers == []


@pytest.fixture
def make_name(prefix: str) -> Callable[[str], str]:
    """Return a function that turns a short label into a segment name under ``prefix``."""

    def make(label: str = "ring") -> str:
        return prefix + label

    return make


@pytest.fixture
def start_process() -> Iterator[Callable[..., BaseProcess]]:
    """Start child processes with "spawn" and make sure each has exited when the test ends."""
    started: list[BaseProcess] = []

    def start(target: Callable[..., None], *args: Any) -> BaseProcess:
        process = SPAWN.Process(target=target, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start

    for process in started:
        if process.is_alive():
            process.kill()
        process.join(timeout=10)
        process.close()
