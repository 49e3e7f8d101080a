"""Frame builders, hypothesis strategies and comparison helpers shared by the parser tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "kite" / "vectors"
"""Golden vectors, kept beside the checkout (and in CI) rather than inside it."""

VALID_LENGTHS = (8, 28, 32, 44, 184)
SEGMENTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 255)

# Derandomized so every run checks the same examples; no example database is written.
HYPOTHESIS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def packet(body: bytes, declared: int | None = None) -> bytes:
    """Return ``body`` behind its 2-byte length prefix (``declared`` overrides the length)."""
    return struct.pack(">H", len(body) if declared is None else declared) + body


def frame(*bodies: bytes, count: int | None = None) -> bytes:
    """Return a binary message holding ``bodies`` as packets (``count`` overrides the packet count)."""
    return struct.pack(">H", len(bodies) if count is None else count) + b"".join(packet(b) for b in bodies)


def u32s(*values: int) -> bytes:
    return struct.pack(f">{len(values)}I", *values)


# Edge values are drawn often: zero (absent time, zero close), the signed boundary and the maximum.
u32 = st.one_of(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]), st.integers(0, 0xFFFFFFFF))
tokens = st.builds(lambda code, segment: (code << 8) | segment, st.integers(0, 0xFFFFFF), st.sampled_from(SEGMENTS))


@st.composite
def packet_bodies(draw: st.DrawFn, length: int) -> bytes:
    """Draw a packet body of ``length`` bytes: a token then u32 fields (depth orders come out as u16)."""
    words = draw(st.lists(u32, min_size=(length + 3) // 4, max_size=(length + 3) // 4))
    body = struct.pack(">I", draw(tokens)) + u32s(*words)
    return body[:length]


@st.composite
def valid_frames(draw: st.DrawFn) -> bytes:
    """Draw a well-formed message; half of them use one packet length for every packet."""
    count = draw(st.integers(0, 12))
    if draw(st.booleans()):
        lengths = [draw(st.sampled_from(VALID_LENGTHS))] * count
    else:
        lengths = draw(st.lists(st.sampled_from(VALID_LENGTHS), min_size=count, max_size=count))
    return frame(*[draw(packet_bodies(length)) for length in lengths])


@st.composite
def any_frames(draw: st.DrawFn) -> bytes:
    """Draw a message that may be damaged: odd lengths, wrong count, trailing bytes, cut short."""
    count = draw(st.integers(0, 10))
    odd_lengths = st.sampled_from([0, 1, 2, 3, 4, 12, 64, 100, 164])
    if draw(st.booleans()):
        lengths = [draw(st.one_of(st.sampled_from(VALID_LENGTHS), odd_lengths))] * count
    else:
        lengths = draw(
            st.lists(st.one_of(st.sampled_from(VALID_LENGTHS), odd_lengths), min_size=count, max_size=count)
        )
    declared_count = (count + draw(st.integers(-2, 3))) % 65536
    message = frame(*[draw(packet_bodies(length)) for length in lengths], count=declared_count)
    message += draw(st.binary(max_size=draw(st.sampled_from([0, 0, 12]))))
    cut = draw(st.integers(0, len(message)))
    return message[:cut] if draw(st.booleans()) else message


def assert_ticks_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    """Assert two tick arrays are equal field by field, NaN equal to NaN and NaT to NaT."""
    assert actual.dtype == expected.dtype
    assert len(actual) == len(expected)
    for name in actual.dtype.names:
        assert np.array_equal(actual[name], expected[name], equal_nan=actual[name].dtype.kind in "fM"), name
