"""Fixtures and helpers of the record and replay tests: random messages, tick comparison, segment checks."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from kitefeed import TICK_DTYPE

SEED = 20240611
"""Seed of every random generator in these tests."""

PACKET_LENGTHS = (8, 28, 32, 44, 184)
SEGMENTS = (1, 2, 3, 9, 12)


def random_message(rng: np.random.Generator, packets: int) -> bytes:
    """Return a well-formed binary message of ``packets`` packets of random lengths and contents."""
    parts = [struct.pack(">H", packets)]
    for _ in range(packets):
        length = int(rng.choice(PACKET_LENGTHS))
        token = (int(rng.integers(1, 1 << 24)) << 8) | int(rng.choice(SEGMENTS))
        body = struct.pack(">I", token) + rng.integers(0, 1 << 31, size=(length - 4) // 4, dtype=np.uint32).astype(">u4").tobytes()
        parts.append(struct.pack(">H", length) + body)
    return b"".join(parts)


def assert_ticks_equal(actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> None:
    """Assert that two tick arrays hold the same records, field by field (NaN equals NaN)."""
    assert actual.dtype == TICK_DTYPE
    assert len(actual) == len(expected)
    for name in TICK_DTYPE.names:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=f"field {name!r} differs")


def own_segments() -> set[str]:
    """Segments of feeds and replays of this test process: their names start with its pid."""
    prefix = f"kitefeed-{os.getpid()}."
    return {name for name in os.listdir("/dev/shm") if name.startswith(prefix)}


@pytest.fixture(autouse=True)
def no_segments_left() -> Iterator[None]:
    before = own_segments()
    yield
    left = own_segments() - before
    assert not left, f"shared-memory segments left behind: {sorted(left)}"


@pytest.fixture
def rng() -> np.random.Generator:
    print(f"random seed {SEED}")
    return np.random.default_rng(SEED)
