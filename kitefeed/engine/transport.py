"""The WebSocket transport behind a small interface.

A worker's connection code needs four things from a WebSocket library: open a
connection, receive whole messages, send text and close. :class:`Transport` names
them, so that the library can be chosen per feed without touching the rest. Two
implementations live in :mod:`kitefeed.engine.transports`: ``"picows"`` (Cython,
the default) and ``"websockets"`` (pure Python with a C speedup for masking).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlencode

from ..errors import InvalidRequestError

__all__ = [
    "DEFAULT_TRANSPORT",
    "TRANSPORTS",
    "BinaryHandler",
    "Channel",
    "ChannelClosed",
    "HandshakeRejected",
    "TextHandler",
    "Transport",
    "build_url",
    "check_transport",
    "open_transport",
]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Largest accepted message. A full-mode frame for 3,000 instruments is about 558 KB."""

TRANSPORTS = ("picows", "websockets")
"""Names accepted by :func:`open_transport`."""

DEFAULT_TRANSPORT = "picows"
"""The transport with the lower CPU time per frame in bench/test_worker.py."""

BinaryHandler = Callable[[bytes | memoryview], None]
"""Called with each binary message; a memoryview is valid only during the call."""

TextHandler = Callable[[str], None]
"""Called with each text message."""


class HandshakeRejected(Exception):
    """The server answered the opening handshake with an HTTP status other than 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"server rejected the WebSocket handshake with HTTP {status}")
        self.status = status


class ChannelClosed(Exception):
    """The connection closed, cleanly or not."""


class Channel(Protocol):
    """An open WebSocket connection."""

    async def recv(self) -> bytes | str:
        """Return the next whole message: bytes for binary, str for text. Raises ChannelClosed."""
        ...

    async def deliver(self, on_binary: BinaryHandler, on_text: TextHandler) -> None:
        """Call a handler with each message, in order, until the connection closes.

        Messages that arrived before the call are delivered first. Raises
        ChannelClosed when the connection closes, and re-raises what a handler raised
        after closing the connection. ``recv`` must not be used at the same time.
        """
        ...

    async def send(self, text: str) -> None:
        """Send one text message. Raises ChannelClosed."""
        ...

    async def close(self) -> None:
        """Close the connection; safe to call twice."""
        ...


class Transport(Protocol):
    """Opens channels."""

    async def open(self, url: str, *, timeout: float) -> Channel:
        """Open a connection to ``url``. Raises HandshakeRejected, OSError or TimeoutError."""
        ...


def build_url(root: str, api_key: str, access_token: str) -> str:
    """Return the ticker URL for one key: ``root`` with the two query parameters Kite expects."""
    separator = "&" if "?" in root else "?"
    return root + separator + urlencode({"api_key": api_key, "access_token": access_token})


def check_transport(name: object) -> str:
    """Return ``name`` if it is one of :data:`TRANSPORTS`; raise InvalidRequestError otherwise."""
    if name not in TRANSPORTS:
        raise InvalidRequestError(f"invalid transport {name!r}: expected one of {', '.join(map(repr, TRANSPORTS))}")
    return name  # type: ignore[return-value]


def open_transport(name: str) -> Transport:
    """Return a new :class:`Transport` of the library ``name`` (one of :data:`TRANSPORTS`)."""
    # Imported here because each module imports this one for the interface.
    if check_transport(name) == "picows":
        from .transports.picows_channel import PicowsTransport

        return PicowsTransport()
    from .transports.websockets_channel import WebSocketsTransport

    return WebSocketsTransport()
