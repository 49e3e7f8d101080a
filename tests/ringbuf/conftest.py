"""Fixtures of the ring tests: unique segment names, checked for leftovers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from kitefeed.ringbuf import list_segments, remove_segments


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
