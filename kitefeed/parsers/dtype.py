"""The decoded tick record: one numpy dtype for every packet kind.

Kite sends five packet kinds (LTP, index quote, index full, quote, full) that share a
prefix of fields. kitefeed decodes all of them into :data:`TICK_DTYPE`, a native-endian,
aligned structured dtype, so a batch of mixed kinds is one array and a shared-memory
ring can hold fixed-size records. A field that a packet kind does not carry is NaN
(prices), 0 (integers) or NaT (times); the ``kind`` field tells which fields are present.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = [
    "DEPTH_LEVELS",
    "MODE_NAMES",
    "Mode",
    "PacketKind",
    "TICK_DTYPE",
    "KIND_MODE",
    "INDEX_SEGMENT",
    "segment_divisor",
]

DEPTH_LEVELS = 5
"""Bid and ask levels in a full packet's market depth."""

INDEX_SEGMENT = 9
"""Segment (``instrument_token & 0xFF``) of NSE and BSE indices, which are not tradable."""


class Mode(enum.IntEnum):
    """Subscription mode, the detail level the server sends for an instrument."""

    LTP = 1
    QUOTE = 2
    FULL = 3

    @property
    def wire_name(self) -> str:
        """The mode string of the subscription protocol: ``"ltp"``, ``"quote"`` or ``"full"``."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: "Mode | str | int") -> "Mode":
        """Convert a mode name (any case), number or member to a :class:`Mode`.

        Raises ``ValueError`` naming the value when it is not a mode.
        """
        if isinstance(value, Mode):
            return value
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        raise ValueError(f"invalid mode {value!r}: expected 'ltp', 'quote' or 'full'")


MODE_NAMES = {mode: mode.wire_name for mode in Mode}


class PacketKind(enum.IntEnum):
    """Packet layout, chosen by the packet's length on the wire."""

    LTP = 1  # 8 bytes
    INDEX_QUOTE = 2  # 28 bytes
    INDEX_FULL = 3  # 32 bytes
    QUOTE = 4  # 44 bytes
    FULL = 5  # 184 bytes


KIND_MODE = {
    PacketKind.LTP: Mode.LTP,
    PacketKind.INDEX_QUOTE: Mode.QUOTE,
    PacketKind.INDEX_FULL: Mode.FULL,
    PacketKind.QUOTE: Mode.QUOTE,
    PacketKind.FULL: Mode.FULL,
}
"""The mode that each packet kind reports."""


def segment_divisor(segment: int) -> float:
    """Return the divisor that turns a raw price of ``segment`` into rupees (or the quote currency).

    CDS (3) prices are sent in units of 1e-7, BCD (6) and NCO (12) in 1e-4, all others in paise.
    """
    if segment == 3:
        return 1e7
    if segment in (6, 12):
        return 1e4
    return 100.0


# Fields are ordered by size (8-byte, then 4, 2, 1) so that the aligned dtype has no
# padding between fields; only the end is padded to a multiple of 8.
TICK_DTYPE = np.dtype(
    [
        # 8-byte fields
        ("recv_time", "M8[ns]"),  # when the worker received the frame, UTC
        ("exchange_timestamp", "M8[ns]"),  # when the exchange generated the tick, UTC; NaT if 0 or absent
        ("last_trade_time", "M8[ns]"),  # time of the last trade, UTC; NaT if 0 or absent
        ("last_price", "f8"),  # last traded price (index value for indices), rupees
        ("average_traded_price", "f8"),  # volume-weighted average price of the day, rupees
        ("open", "f8"),  # day open, rupees
        ("high", "f8"),  # day high, rupees
        ("low", "f8"),  # day low, rupees
        ("close", "f8"),  # previous day's close, rupees
        ("change", "f8"),  # percent change of last_price against close; 0 when close is 0
        ("net_change", "f8"),  # index packets only: last - close as sent by the exchange, rupees
        ("bid_price", "f8", (DEPTH_LEVELS,)),  # best bid first, rupees; 0 for an empty level
        ("ask_price", "f8", (DEPTH_LEVELS,)),  # best ask first, rupees; 0 for an empty level
        # 4-byte fields
        ("instrument_token", "u4"),  # exchange instrument token; its low byte is the segment
        ("last_traded_quantity", "u4"),  # quantity of the last trade
        ("volume_traded", "u4"),  # quantity traded today
        ("total_buy_quantity", "u4"),  # pending buy quantity across the book
        ("total_sell_quantity", "u4"),  # pending sell quantity across the book
        ("oi", "u4"),  # open interest, 0 for instruments without one
        ("oi_day_high", "u4"),  # highest open interest of the day
        ("oi_day_low", "u4"),  # lowest open interest of the day
        ("bid_quantity", "u4", (DEPTH_LEVELS,)),  # quantity at each bid level
        ("ask_quantity", "u4", (DEPTH_LEVELS,)),  # quantity at each ask level
        # 2-byte fields
        ("bid_orders", "u2", (DEPTH_LEVELS,)),  # number of orders at each bid level
        ("ask_orders", "u2", (DEPTH_LEVELS,)),  # number of orders at each ask level
        ("key_index", "u2"),  # index of the API key whose connection received the tick
        # 1-byte fields
        ("kind", "u1"),  # PacketKind of the wire packet
        ("mode", "u1"),  # Mode the packet kind reports
        ("segment", "u1"),  # instrument_token & 0xFF
        ("tradable", "?"),  # False for indices (segment 9)
        ("connection_index", "u1"),  # connection of the key (0-2) that received the tick
    ],
    align=True,
)
"""Native-endian, aligned record of one decoded tick (272 bytes)."""
