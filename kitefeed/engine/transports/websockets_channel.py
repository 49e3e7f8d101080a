"""The transport on the ``websockets`` library (its asyncio implementation)."""

from __future__ import annotations

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..._logging import quiet_websockets_logger
from ..transport import MAX_MESSAGE_BYTES, BinaryHandler, Channel, ChannelClosed, HandshakeRejected, TextHandler

__all__ = ["WebSocketsTransport"]


class _WebSocketsChannel:
    __slots__ = ("_connection",)

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    async def recv(self) -> bytes | str:
        try:
            return await self._connection.recv()
        except ConnectionClosed as exc:
            raise ChannelClosed(str(exc)) from None

    async def deliver(self, on_binary: BinaryHandler, on_text: TextHandler) -> None:
        # Bound methods are looked up once, outside the per-message loop.
        recv = self._connection.recv
        try:
            while True:
                message = await recv()
                if message.__class__ is bytes:
                    on_binary(message)  # type: ignore[arg-type]
                else:
                    on_text(message)  # type: ignore[arg-type]
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
    """:class:`~kitefeed.engine.transport.Transport` on the ``websockets`` library."""

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
                max_size=MAX_MESSAGE_BYTES,
                max_queue=64,
                proxy=None,
                user_agent_header=f"kitefeed websockets/{websockets.__version__}",
                logger=self._logger,
            )
        except InvalidStatus as exc:
            raise HandshakeRejected(exc.response.status_code) from None
        return _WebSocketsChannel(connection)
