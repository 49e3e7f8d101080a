"""Big-endian numpy dtypes that mirror each packet layout byte for byte.

Viewing a ``(n, length)`` block of packet bytes as one of these dtypes reads every field
of ``n`` packets at once; the encoder fills the same dtypes to produce wire bytes.
All 4-byte fields are unsigned, as in the official Python client, except the index
packets' net change, which the exchange sends as a signed difference.
"""

from __future__ import annotations

import numpy as np

from .dtype import DEPTH_LEVELS, PacketKind

__all__ = ["DEPTH_DTYPE", "KIND_LENGTH", "LENGTH_KIND", "WIRE_DTYPES"]

DEPTH_DTYPE = np.dtype(
    {
        "names": ["quantity", "price", "orders"],
        "formats": [">u4", ">u4", ">u2"],
        "offsets": [0, 4, 8],
        "itemsize": 12,  # bytes 10-12 are padding, ignored when read
    }
)

LTP_WIRE = np.dtype({"names": ["token", "last_price"], "formats": [">u4", ">u4"], "offsets": [0, 4], "itemsize": 8})

_INDEX_NAMES = ["token", "last_price", "high", "low", "open", "close", "net_change"]
_INDEX_FORMATS = [">u4"] * 6 + [">i4"]

INDEX_QUOTE_WIRE = np.dtype(
    {"names": _INDEX_NAMES, "formats": _INDEX_FORMATS, "offsets": list(range(0, 28, 4)), "itemsize": 28}
)
INDEX_FULL_WIRE = np.dtype(
    {
        "names": _INDEX_NAMES + ["exchange_timestamp"],
        "formats": _INDEX_FORMATS + [">u4"],
        "offsets": list(range(0, 32, 4)),
        "itemsize": 32,
    }
)

_QUOTE_NAMES = [
    "token",
    "last_price",
    "last_traded_quantity",
    "average_traded_price",
    "volume_traded",
    "total_buy_quantity",
    "total_sell_quantity",
    "open",
    "high",
    "low",
    "close",
]
QUOTE_WIRE = np.dtype(
    {"names": _QUOTE_NAMES, "formats": [">u4"] * 11, "offsets": list(range(0, 44, 4)), "itemsize": 44}
)

_FULL_EXTRA = ["last_trade_time", "oi", "oi_day_high", "oi_day_low", "exchange_timestamp"]
FULL_WIRE = np.dtype(
    {
        "names": _QUOTE_NAMES + _FULL_EXTRA + ["bids", "asks"],
        "formats": [">u4"] * 16 + [(DEPTH_DTYPE, (DEPTH_LEVELS,)), (DEPTH_DTYPE, (DEPTH_LEVELS,))],
        "offsets": list(range(0, 64, 4)) + [64, 124],
        "itemsize": 184,
    }
)

WIRE_DTYPES = {
    PacketKind.LTP: LTP_WIRE,
    PacketKind.INDEX_QUOTE: INDEX_QUOTE_WIRE,
    PacketKind.INDEX_FULL: INDEX_FULL_WIRE,
    PacketKind.QUOTE: QUOTE_WIRE,
    PacketKind.FULL: FULL_WIRE,
}
"""Wire dtype of each packet kind."""

KIND_LENGTH = {kind: dtype.itemsize for kind, dtype in WIRE_DTYPES.items()}
"""Packet length in bytes of each kind: 8, 28, 32, 44, 184."""

LENGTH_KIND = {length: kind for kind, length in KIND_LENGTH.items()}
"""Packet kind of each valid packet length."""
