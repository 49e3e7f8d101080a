"""Sequence-numbered test records whose contents can be checked one by one."""

from __future__ import annotations

from typing import Any

import numpy as np

SEQ_DTYPE = np.dtype([("seq", "<u8"), ("check", "<u8"), ("payload", "<f8", (6,))])
"""64-byte record: its position in the stream, a hash of it, and a filler derived from it."""

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def make_records(start: int, count: int) -> np.ndarray[Any, Any]:
    """Return records for positions ``start`` to ``start + count - 1``."""
    records = np.zeros(count, dtype=SEQ_DTYPE)
    seq = np.arange(start, start + count, dtype=np.uint64)
    records["seq"] = seq
    records["check"] = seq * _MULTIPLIER
    records["payload"] = seq.astype(np.float64)[:, None] + np.arange(6)
    return records


def damaged_positions(records: np.ndarray[Any, Any], start: int) -> list[int]:
    """Return the positions whose record differs from ``make_records(start, len(records))``."""
    expected = make_records(start, len(records))
    same = (records["seq"] == expected["seq"]) & (records["check"] == expected["check"])
    same &= (records["payload"] == expected["payload"]).all(axis=1)
    return [start + int(index) for index in np.flatnonzero(~same)]
