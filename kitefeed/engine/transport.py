"""The WebSocket transport behind a small interface.

A worker's connection code needs four things from a WebSocket library: open a
connection, receive whole messages, send text and close. :class:`Transport` names
them, so that a faster library can replace ``websockets`` without touching the rest.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .._logging import quiet_websockets_logger

__all__ = [
    "Channel",
    "ChannelClosed",
    "HandshakeRejected",
    "Transport",
    "WebSocketsTransport",
    "build_url",
]

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""A full-mode frame for 3,000 instruments is about 558 KB; this leaves ample room."""


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


class _WebSocketsChannel:
    __slots__ = ("_connection",)

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    async def recv(self) -> bytes | str:
        try:
            return await self._connection.recv()
        except ConnectionClosed as exc:
            raise ChannelClosed(str(exc)) from None

    async def send(self, text: str) -> None:
        try:
            await self._connection.send(text)
        except ConnectionClosed as exc:
            raise ChannelClosed(str(exc)) from None

    async def close(self) -> None:
        await self._connection.close()


class WebSocketsTransport:
    """:class:`Transport` on the ``websockets`` library (asyncio implementation)."""

    def __init__(self) -> None:
        self._logger = quiet_websockets_logger("kitefeed.engine.websocket")

    async def open(self, url: str, *, timeout: float) -> Channel:
        try:
            connection = await connect(
                url,
                # Kite negotiates no extension; compression would only cost CPU.
                compression=None,
                # Liveness is judged by the worker from received messages, as the
                # server need not answer pings promptly.
                ping_interval=None,
                open_timeout=timeout,
                close_timeout=1,
                max_size=_MAX_MESSAGE_BYTES,
                max_queue=64,
                proxy=None,
                user_agent_header=f"kitefeed websockets/{websockets.__version__}",
                logger=self._logger,
            )
        except InvalidStatus as exc:
            raise HandshakeRejected(exc.response.status_code) from None
        return _WebSocketsChannel(connection)
