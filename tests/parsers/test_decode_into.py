"""Decoder.decode_into() and Decoder.max_ticks(): decoding into caller-owned records."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given

from kitefeed.errors import InvalidRequestError
from kitefeed.parsers import TICK_DTYPE, Decoder
from kitefeed.parsers import _decode

from .frames import HYPOTHESIS, any_frames, frame, u32s

RECV = 1_700_000_000_000_000_000
LTP = u32s(408065, 157315)
FULL = u32s(408065, *range(1, 46))


def garbage(count: int) -> np.ndarray:
    """Return ``count`` records whose every byte is 0xFF, like a reused ring slot."""
    return np.full(count * TICK_DTYPE.itemsize, 0xFF, dtype=np.uint8).view(TICK_DTYPE)


@HYPOTHESIS
@given(any_frames())
def test_every_byte_written_over_garbage(message: bytes) -> None:
    expected = Decoder(key_index=7, connection_index=2).decode(message, RECV)
    out = garbage(Decoder.max_ticks(message) + 1)
    written = Decoder(key_index=7, connection_index=2).decode_into(message, out, RECV)
    assert written == len(expected)
    assert out[:written].tobytes() == expected.tobytes()
    assert out[written:].tobytes() == b"\xff" * ((len(out) - written) * TICK_DTYPE.itemsize)


def test_padding_bytes_are_zero() -> None:
    out = garbage(1)
    Decoder().decode_into(frame(FULL), out, RECV)
    raw = out.view(np.uint8)
    assert raw[TICK_DTYPE.fields["connection_index"][1] + 1 :].tolist() == [0] * 5


def test_writes_into_ring_slot_view() -> None:
    slots = garbage(8)
    written = Decoder().decode_into(frame(LTP, FULL), slots[5:], RECV)
    assert written == 2
    assert slots["kind"][5:7].tolist() == [1, 5]
    assert slots[:5].tobytes() == garbage(5).tobytes()


def test_strided_out_gets_same_records() -> None:
    out = garbage(6)
    written = Decoder().decode_into(frame(LTP, FULL, LTP), out[::2], RECV)
    assert written == 3
    # Rows are compared as raw bytes, because tobytes() of a strided structured array
    # copies field by field and skips the padding.
    rows = out.view(np.uint8).reshape(6, TICK_DTYPE.itemsize)
    assert rows[::2].tobytes() == Decoder().decode(frame(LTP, FULL, LTP), RECV).tobytes()
    assert rows[1::2].tobytes() == garbage(3).tobytes()


def test_short_out_raises_with_both_sizes() -> None:
    decoder = Decoder()
    out = garbage(1)
    with pytest.raises(InvalidRequestError, match=r"out holds 1 records .* carry 2 ticks"):
        decoder.decode_into(frame(LTP, LTP), out, RECV)
    assert out.tobytes() == garbage(1).tobytes()
    assert decoder.stats().messages == 0


@pytest.mark.parametrize(
    "out",
    [
        np.zeros(4, dtype=np.float64),
        np.zeros((2, 2), dtype=TICK_DTYPE),
        [0, 0],
    ],
    ids=["wrong-dtype", "two-dimensional", "list"],
)
def test_invalid_out_raises(out: object) -> None:
    with pytest.raises(InvalidRequestError, match="invalid out"):
        Decoder().decode_into(frame(LTP), out, RECV)  # type: ignore[arg-type]


def test_read_only_out_raises() -> None:
    out = np.zeros(2, dtype=TICK_DTYPE)
    out.flags.writeable = False
    with pytest.raises(InvalidRequestError, match="writable"):
        Decoder().decode_into(frame(LTP), out, RECV)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"", 0),
        (b"\x00", 0),
        (b"\x00\x00", 0),
        (frame(LTP), 1),
        (frame(FULL, FULL, FULL), 3),
        (frame(LTP, count=500), 1),
        (struct.pack(">H", 65535) + bytes(100), 10),
    ],
    ids=["empty", "heartbeat", "no-packets", "one", "three-full", "count-beyond-data", "count-capped"],
)
def test_max_ticks(message: bytes, expected: int) -> None:
    assert Decoder.max_ticks(message) == expected


@HYPOTHESIS
@given(any_frames())
def test_max_ticks_bounds_ticks(message: bytes) -> None:
    assert len(Decoder().decode(message, RECV)) <= Decoder.max_ticks(message)


def test_memoryview_of_words_accepted() -> None:
    message = frame(LTP, LTP)
    padded = message + bytes(-len(message) % 4)
    view = memoryview(padded).cast("I")
    assert Decoder.max_ticks(view) == Decoder.max_ticks(padded)
    assert Decoder().decode(view, RECV).tobytes() == Decoder().decode(message, RECV).tobytes()


def test_extension_layout_matches_dtype() -> None:
    assert _decode.RECORD_SIZE == TICK_DTYPE.itemsize
    assert _decode.LAYOUT == {name: TICK_DTYPE.fields[name][1] for name in TICK_DTYPE.names}
