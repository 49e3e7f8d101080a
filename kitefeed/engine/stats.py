"""Statistics records of a feed: per connection, per API key and in total."""

from __future__ import annotations

import msgspec

from .messages import ConnectionStats

__all__ = ["ConnectionStats", "FeedStats", "KeyStats"]


class KeyStats(msgspec.Struct, frozen=True):
    """Counters of one API key's worker and connections.

    ``records_lost`` counts records that readers opened through this :class:`Feed`
    missed because the writer overtook them; readers in other processes keep their own
    count in ``FeedReader.stats()``.
    """

    api_key: str
    key_index: int
    state: str  # "running", "auth_failed" (token rejected) or "restarting" (worker not replying)
    worker_alive: bool
    worker_restarts: int
    connected: int  # connections with an open WebSocket
    instruments: int
    frames: int
    heartbeats: int
    bytes: int
    ticks: int
    parse_errors: int
    text_messages: int
    ring_position: int  # records published into this key's ring since the feed started
    records_lost: int
    connections: list[ConnectionStats]
    journal_failures: int = 0  # raw messages not written to the journal (only with journal_dir)


class FeedStats(msgspec.Struct, frozen=True):
    """Totals over all keys, and each key's own record in ``keys``."""

    connected: int
    instruments: int
    frames: int
    heartbeats: int
    bytes: int
    ticks: int
    parse_errors: int
    text_messages: int
    ring_position: int
    records_lost: int
    keys: list[KeyStats]

    @classmethod
    def from_keys(cls, keys: list[KeyStats]) -> "FeedStats":
        return cls(
            connected=sum(k.connected for k in keys),
            instruments=sum(k.instruments for k in keys),
            frames=sum(k.frames for k in keys),
            heartbeats=sum(k.heartbeats for k in keys),
            bytes=sum(k.bytes for k in keys),
            ticks=sum(k.ticks for k in keys),
            parse_errors=sum(k.parse_errors for k in keys),
            text_messages=sum(k.text_messages for k in keys),
            ring_position=sum(k.ring_position for k in keys),
            records_lost=sum(k.records_lost for k in keys),
            keys=keys,
        )
