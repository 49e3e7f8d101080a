"""Commands and replies exchanged between the supervisor and a worker over a pipe.

Every message is a tagged msgspec struct encoded as MessagePack. Commands carry an ``id``
that the worker copies into its reply; events carry no id and arrive at any time.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Command",
    "Configure",
    "ConnectionSettings",
    "ReconnectPolicy",
    "ConnectionStats",
    "Done",
    "Event",
    "Failed",
    "GetStats",
    "Reply",
    "SetMode",
    "SetToken",
    "StatsReply",
    "Stop",
    "Subscribe",
    "TextEvent",
    "Unsubscribe",
    "ConnectionEvent",
    "WorkerMessage",
    "decode_command",
    "decode_worker_message",
    "encode",
]


class ReconnectPolicy(msgspec.Struct, frozen=True):
    """When a connection retries after it failed or was closed.

    Attempt ``n`` (from 0) waits a random time up to ``min(cap, base * 2**n)`` seconds
    ("full jitter"), at least ``too_many_requests_delay`` after an HTTP 429. The count
    restarts after each successful handshake. With ``max_attempts`` of None a connection
    retries for as long as the feed runs. Otherwise it gives up after that many failed
    attempts in a row and reports the state ``failed``.
    """

    base: float = 0.5
    cap: float = 30.0
    max_attempts: int | None = None
    too_many_requests_delay: float = 5.0

    def __post_init__(self) -> None:
        from ..errors import InvalidRequestError

        if not 0 < self.base <= self.cap:
            raise InvalidRequestError(
                f"invalid reconnect delays base={self.base} cap={self.cap}: expected 0 < base <= cap seconds"
            )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise InvalidRequestError(
                f"invalid max_attempts {self.max_attempts}: expected a positive count, or None to retry forever"
            )
        if self.too_many_requests_delay < 0:
            raise InvalidRequestError(
                f"invalid too_many_requests_delay {self.too_many_requests_delay}: expected seconds >= 0"
            )


class ConnectionSettings(msgspec.Struct, frozen=True):
    """Timeouts, the reconnect policy and the WebSocket library of every connection of a worker."""

    liveness_timeout: float
    connect_timeout: float
    reconnect: ReconnectPolicy
    transport: str = "picows"  # "picows" or "websockets", see kitefeed.engine.transport
    journal_dir: str | None = None  # directory of raw-message journals, one file set per key
    feed_name: str = ""  # names the journal files


class Configure(msgspec.Struct, tag=True):
    """First command a worker receives: who it is and where to connect."""

    id: int
    key_index: int
    api_key: str
    access_token: str
    url: str
    ring_name: str
    settings: ConnectionSettings


class Subscribe(msgspec.Struct, tag=True):
    """Subscribe ``tokens`` on one connection of the worker's key, in ``mode`` (a Mode value)."""

    id: int
    connection: int
    tokens: list[int]
    mode: int


class Unsubscribe(msgspec.Struct, tag=True):
    id: int
    connection: int
    tokens: list[int]


class SetMode(msgspec.Struct, tag=True):
    id: int
    connection: int
    tokens: list[int]
    mode: int


class SetToken(msgspec.Struct, tag=True):
    """Replace the access token; connections use it from their next handshake."""

    id: int
    access_token: str


class GetStats(msgspec.Struct, tag=True):
    id: int


class Stop(msgspec.Struct, tag=True):
    id: int


Command = Configure | Subscribe | Unsubscribe | SetMode | SetToken | GetStats | Stop


class ConnectionStats(msgspec.Struct, frozen=True):
    """Counters of one WebSocket connection, cumulative since the worker started."""

    connection: int
    state: str  # "idle", "connecting", "connected", "backoff", "auth_failed", "failed" or "closed"
    connected: bool
    instruments: int
    frames: int  # binary market-data messages, heartbeats excluded
    heartbeats: int
    bytes: int  # payload bytes of every binary message
    ticks: int
    parse_errors: int
    text_messages: int
    connects: int  # successful handshakes, the first one included
    disconnects: int


class Done(msgspec.Struct, tag=True):
    id: int


class Failed(msgspec.Struct, tag=True):
    id: int
    message: str


class StatsReply(msgspec.Struct, tag=True):
    id: int
    ring_position: int
    connections: list[ConnectionStats]
    journal_failures: int = 0  # raw messages the worker could not write to its journal


class TextEvent(msgspec.Struct, tag=True):
    """A text message from the server: an order update, an error or a broker message."""

    connection: int
    text: str  # the message as received; kitefeed.parsers.parse_text decodes it


class ConnectionEvent(msgspec.Struct, tag=True):
    """A connection changed state, with the reason in plain words."""

    connection: int
    state: str
    detail: str


Reply = Done | Failed | StatsReply
Event = TextEvent | ConnectionEvent
WorkerMessage = Done | Failed | StatsReply | TextEvent | ConnectionEvent

_encoder = msgspec.msgpack.Encoder()
_command_decoder = msgspec.msgpack.Decoder(Command)
_worker_decoder = msgspec.msgpack.Decoder(WorkerMessage)


def encode(message: msgspec.Struct) -> bytes:
    """Encode a command, reply or event as MessagePack."""
    return _encoder.encode(message)


def decode_command(data: bytes) -> Command:
    return _command_decoder.decode(data)


def decode_worker_message(data: bytes) -> WorkerMessage:
    return _worker_decoder.decode(data)
