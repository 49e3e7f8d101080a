"""Kite wire format: frame walk, packet decode, text messages and encoder. No I/O."""

from .dtype import DEPTH_LEVELS, INDEX_SEGMENT, KIND_MODE, TICK_DTYPE, Mode, PacketKind, segment_divisor
from .encoder import HEARTBEAT, encode_frame, kind_for

__all__ = [
    "DEPTH_LEVELS",
    "HEARTBEAT",
    "INDEX_SEGMENT",
    "KIND_MODE",
    "Mode",
    "PacketKind",
    "TICK_DTYPE",
    "encode_frame",
    "kind_for",
    "segment_divisor",
]
