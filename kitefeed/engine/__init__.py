"""Supervisor, worker processes, connections, allocation and statistics."""

from .allocation import MAX_CONNECTIONS_PER_KEY, MAX_INSTRUMENTS_PER_CONNECTION
from .credentials import ApiKey
from .events import FeedEvent
from .reader import FeedReader, open_reader
from .stats import ConnectionStats, FeedStats, KeyStats
from .feed import KITE_TICKER_URL, Feed
from .messages import ReconnectPolicy

__all__ = [
    "ApiKey",
    "ConnectionStats",
    "Feed",
    "FeedEvent",
    "FeedReader",
    "FeedStats",
    "KITE_TICKER_URL",
    "KeyStats",
    "MAX_CONNECTIONS_PER_KEY",
    "MAX_INSTRUMENTS_PER_CONNECTION",
    "ReconnectPolicy",
    "open_reader",
]
