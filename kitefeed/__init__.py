"""kitefeed: Kite Connect market ticks from many API keys into shared memory.

Start a :class:`Feed` with your API keys, subscribe instruments, and read ticks as
numpy arrays of :data:`TICK_DTYPE` with :meth:`Feed.open_reader`, or from any other
process with :func:`open_reader` and the feed's name.
"""

from .consume import KiteTickerAdapter, LatestTable, on_ticks, on_ticks_async, to_arrow, to_pandas, to_polars
from .engine import (
    ApiKey,
    ConnectionStats,
    Feed,
    FeedEvent,
    FeedReader,
    FeedStats,
    KeyStats,
    KITE_TICKER_URL,
    ReconnectPolicy,
    open_reader,
)
from .errors import (
    CapacityError,
    FeedClosedError,
    FeedStateError,
    InvalidRequestError,
    KitefeedError,
    RingAbandonedError,
    RingError,
    RingLayoutError,
    WorkerError,
)
from .parsers import TICK_DTYPE, Decoder, Mode, PacketKind, parse_text, to_kiteconnect
from .ringbuf import Wait

__all__ = [
    "ApiKey",
    "CapacityError",
    "ConnectionStats",
    "Decoder",
    "Feed",
    "FeedClosedError",
    "FeedEvent",
    "FeedReader",
    "FeedStateError",
    "FeedStats",
    "InvalidRequestError",
    "KITE_TICKER_URL",
    "KeyStats",
    "KiteTickerAdapter",
    "LatestTable",
    "KitefeedError",
    "Mode",
    "PacketKind",
    "ReconnectPolicy",
    "RingAbandonedError",
    "RingError",
    "RingLayoutError",
    "TICK_DTYPE",
    "Wait",
    "WorkerError",
    "on_ticks",
    "on_ticks_async",
    "open_reader",
    "parse_text",
    "to_arrow",
    "to_kiteconnect",
    "to_pandas",
    "to_polars",
]
