"""The transport on ``picows``, a WebSocket library for asyncio written in Cython.

picows parses frames in C and calls a listener once per frame with a view of its read
buffer, so a binary message can be decoded without being copied into a new bytes
object. It does not reassemble fragmented messages and does not reply to a close frame,
so the listener here does both. picows implements no extension, so permessage-deflate
is never negotiated.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import picows
from picows import WSCloseCode, WSFrame, WSHandshakeError, WSListener, WSMsgType, WSTransport

from ..._logging import quiet_websockets_logger
from ..transport import MAX_MESSAGE_BYTES, BinaryHandler, Channel, ChannelClosed, HandshakeRejected, TextHandler

__all__ = ["PicowsTransport"]

logger = logging.getLogger(__name__)

_MAX_QUEUED = 64
"""Messages that recv() may have waiting before reading from the socket pauses."""

_CLOSE_TIMEOUT = 1.0
"""Seconds that close() waits for the peer to close the TCP connection before aborting it."""

_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
_CONTINUATION = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE


class _Listener(WSListener):  # type: ignore[misc]
    """Receives the frames of one connection and turns them into whole messages."""

    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.on_binary: BinaryHandler | None = None
        self.on_text: TextHandler | None = None
        self.queue: deque[bytes | str] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.fragments: bytearray | None = None
        self.fragments_type = _BINARY
        self.error: BaseException | None = None
        self.close_reason = "connection lost without a close frame"
        self.disconnected = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # Fast path: a whole binary message in one frame goes to the handler as a view
        # of picows's read buffer, without a copy.
        handler = self.on_binary
        if handler is not None and frame.fin and frame.msg_type is _BINARY and self.fragments is None:
            try:
                handler(frame.get_payload_as_memoryview())
            except Exception as exc:  # noqa: BLE001 - re-raised by deliver()
                self.fail(exc)
            return
        self.on_other_frame(transport, frame)

    def on_other_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is _CLOSE:
            self.close_reason = f"received close frame {frame.get_close_code().value} {frame.get_close_reason()!r}"
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()
            return
        if msg_type is not _BINARY and msg_type is not _TEXT and msg_type is not _CONTINUATION:
            return  # picows replies to PING itself, and an unsolicited PONG needs no action

        if msg_type is _CONTINUATION:
            if self.fragments is None:
                self.fail(ChannelClosed("protocol error: continuation frame without a first fragment"))
                return
            self.fragments += frame.get_payload_as_memoryview()
        elif self.fragments is not None:
            self.fail(ChannelClosed("protocol error: new message before the last fragment of the previous one"))
            return
        elif not frame.fin:
            self.fragments = bytearray(frame.get_payload_as_memoryview())
            self.fragments_type = msg_type
        elif msg_type is _BINARY:
            self.dispatch(frame.get_payload_as_bytes())
            return
        else:
            self.dispatch_text(frame.get_payload_as_memoryview())
            return

        if len(self.fragments) > MAX_MESSAGE_BYTES:
            self.fail(ChannelClosed(f"message of more than {MAX_MESSAGE_BYTES} bytes; closing"))
            return
        if frame.fin:
            data, self.fragments = self.fragments, None
            if self.fragments_type is _BINARY:
                self.dispatch(bytes(data))
            else:
                self.dispatch_text(data)

    def dispatch_text(self, data: bytes | bytearray | memoryview) -> None:
        try:
            text = str(data, "utf-8")
        except UnicodeDecodeError:
            self.fail(ChannelClosed("protocol error: text message is not valid UTF-8"))
            return
        self.dispatch(text)

    def dispatch(self, message: bytes | str) -> None:
        """Hand a whole message to its handler, or queue it for recv()."""
        handler = self.on_binary if message.__class__ is bytes else self.on_text
        if handler is not None:
            try:
                handler(message)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - re-raised by deliver()
                self.fail(exc)
            return

        self.queue.append(message)
        if len(self.queue) >= _MAX_QUEUED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.underlying_transport.pause_reading()
        self.wake()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        if self.transport is not None:
            if not self.transport.is_close_frame_sent:
                self.transport.send_close(WSCloseCode.INTERNAL_ERROR)
            self.transport.disconnect()

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected = True
        self.wake()

    def closed_error(self) -> BaseException:
        """Return the exception that ends a receive: the first failure, or ChannelClosed."""
        if self.error is not None:
            return self.error
        return ChannelClosed(self.close_reason)


class _PicowsChannel:
    __slots__ = ("_transport", "_listener")

    def __init__(self, transport: WSTransport, listener: _Listener) -> None:
        self._transport = transport
        self._listener = listener

    async def recv(self) -> bytes | str:
        listener = self._listener
        while True:
            if listener.queue:
                message = listener.queue.popleft()
                if listener.paused and len(listener.queue) < _MAX_QUEUED // 2:
                    listener.paused = False
                    self._transport.underlying_transport.resume_reading()
                return message
            if listener.disconnected:
                raise listener.closed_error()
            listener.waiter = asyncio.get_running_loop().create_future()
            await listener.waiter

    async def deliver(self, on_binary: BinaryHandler, on_text: TextHandler) -> None:
        listener = self._listener
        listener.on_binary = on_binary
        listener.on_text = on_text
        try:
            # The handlers are set first, so that dispatch() calls them instead of
            # queueing the message again.
            while listener.queue and listener.error is None:
                listener.dispatch(listener.queue.popleft())
            if listener.paused:
                listener.paused = False
                self._transport.underlying_transport.resume_reading()

            if not listener.disconnected and listener.error is None:
                await self._transport.wait_disconnected()
        except Exception as exc:  # noqa: BLE001 - picows re-raises a protocol error it found
            listener.error = listener.error or ChannelClosed(f"protocol error: {exc}")
        finally:
            listener.on_binary = None
            listener.on_text = None
        raise listener.closed_error()

    async def send(self, text: str) -> None:
        transport = self._transport
        if transport.is_disconnected or transport.is_close_frame_sent:
            raise ChannelClosed(self._listener.close_reason)
        transport.send(_TEXT, text.encode())

    async def close(self) -> None:
        transport = self._transport
        if transport.is_disconnected:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode.OK)
        transport.disconnect()
        try:
            await asyncio.wait_for(transport.wait_disconnected(), _CLOSE_TIMEOUT)
        except TimeoutError:
            transport.disconnect(graceful=False)
        except Exception:  # noqa: BLE001 - the error was delivered or is irrelevant once closing
            logger.debug("picows reported an error while closing", exc_info=True)


class PicowsTransport:
    """:class:`~kitefeed.engine.transport.Transport` on the ``picows`` library."""

    def __init__(self) -> None:
        # picows logs handshakes below DEBUG, and the request line carries the token.
        self._logger = quiet_websockets_logger("kitefeed.engine.picows")
        self._headers = {"User-Agent": f"kitefeed picows/{picows.__version__}"}

    async def open(self, url: str, *, timeout: float) -> Channel:
        try:
            # picows's own timeout covers the handshake. The outer one covers the TCP
            # connect as well, with a second of slack so that picows's fires first.
            transport, listener = await asyncio.wait_for(
                picows.ws_connect(
                    _Listener,
                    url,
                    websocket_handshake_timeout=timeout,
                    logger_name=self._logger,
                    enable_auto_ping=False,
                    enable_auto_pong=True,
                    max_frame_size=MAX_MESSAGE_BYTES,
                    max_redirects=0,
                    extra_headers=self._headers,
                    # The default plain loop.create_connection(), which uvloop implements in C.
                    use_aiofastnet=False,
                ),
                timeout + 1.0,
            )
        except WSHandshakeError as exc:
            response = exc.response
            if response is not None and int(response.status) != 101:
                raise HandshakeRejected(int(response.status)) from None
            raise
        return _PicowsChannel(transport, listener)
