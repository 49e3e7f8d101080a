"""Kite wire format: frame walk, packet decode, text messages and encoder. No I/O."""

from .decoder import DecodeStats, Decoder
from .dtype import DEPTH_LEVELS, INDEX_SEGMENT, KIND_MODE, TICK_DTYPE, Mode, PacketKind, segment_divisor
from .encoder import HEARTBEAT, encode_frame, kind_for
from .kiteconnect_format import IST, to_json_ready, to_kiteconnect, to_records
from .text import (
    BrokerMessage,
    ErrorMessage,
    InvalidMessage,
    OrderUpdate,
    TextMessage,
    UnknownMessage,
    parse_text,
)

__all__ = [
    "BrokerMessage",
    "DEPTH_LEVELS",
    "DecodeStats",
    "Decoder",
    "ErrorMessage",
    "HEARTBEAT",
    "INDEX_SEGMENT",
    "IST",
    "InvalidMessage",
    "KIND_MODE",
    "Mode",
    "OrderUpdate",
    "PacketKind",
    "TICK_DTYPE",
    "TextMessage",
    "UnknownMessage",
    "encode_frame",
    "kind_for",
    "parse_text",
    "segment_divisor",
    "to_json_ready",
    "to_kiteconnect",
    "to_records",
]
