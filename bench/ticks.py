"""Batches of tick records for the benchmarks."""

from __future__ import annotations

from typing import Any

import numpy as np

from kitefeed.parsers import TICK_DTYPE, Mode, PacketKind

SEED = 20_240_611
"""Seed of the random record contents, which do not change the speed of a copy."""


def make_ticks(count: int, seed: int = SEED) -> np.ndarray[Any, Any]:
    """Return ``count`` full-mode records of :data:`TICK_DTYPE`, a new 1-D array.

    ``instrument_token`` runs from 1 to ``count``, so the last record of every batch
    has the token ``count``, which lets a reader check that it saw the end of a batch.
    """
    rng = np.random.default_rng(seed)
    ticks = np.zeros(count, dtype=TICK_DTYPE)
    ticks["instrument_token"] = np.arange(1, count + 1, dtype=np.uint32)
    ticks["last_price"] = rng.uniform(100.0, 5000.0, count).round(2)
    ticks["volume_traded"] = rng.integers(0, 1 << 24, count, dtype=np.uint32)
    ticks["bid_price"] = ticks["last_price"][:, None] - np.arange(1, 6) * 0.05
    ticks["ask_price"] = ticks["last_price"][:, None] + np.arange(1, 6) * 0.05
    ticks["kind"] = PacketKind.FULL
    ticks["mode"] = Mode.FULL
    ticks["segment"] = 1
    ticks["tradable"] = True
    return ticks
