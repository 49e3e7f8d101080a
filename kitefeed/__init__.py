"""kitefeed: Kite Connect market ticks from many API keys into shared memory."""

from .errors import (
    CapacityError,
    FeedClosedError,
    FeedStateError,
    InvalidRequestError,
    KitefeedError,
    RingError,
    RingLayoutError,
    WorkerError,
)
from .parsers import TICK_DTYPE, Mode, PacketKind

__all__ = [
    "CapacityError",
    "FeedClosedError",
    "FeedStateError",
    "InvalidRequestError",
    "KitefeedError",
    "Mode",
    "PacketKind",
    "RingError",
    "RingLayoutError",
    "TICK_DTYPE",
    "WorkerError",
]
