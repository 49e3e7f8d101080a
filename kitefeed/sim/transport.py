"""The simulator's write path below websockets: slow writes, dropped pongs and TCP resets.

websockets 17 writes each serialized frame with one ``transport.write()`` call and keeps
no other path to the socket. :class:`SimConnection`, passed to ``serve()`` as its
documented ``create_connection`` hook, wraps the asyncio transport in a
:class:`FaultTransport` when the TCP connection is made. Every frame (data, ping, pong,
close) then passes through the wrapper in order, so it can cut a frame into small writes
or drop a pong without breaking the framing that websockets keeps.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection

from .faults import ConnectionFaults

__all__ = ["FaultTransport", "SimConnection"]

logger = logging.getLogger(__name__)

_OPCODE_PONG = 0x0A
_BUFFER_POLL = 0.001  # seconds between checks that the socket took the previous chunk

# Markers queued among the chunks, so that EOF and close keep their place after the data.
_EOF = object()
_CLOSE = object()


class FaultTransport(asyncio.Transport):
    """An asyncio transport that passes writes to ``inner``, applying the connection's faults.

    With slow writes on, each frame is cut into chunks of ``chunk_size`` bytes. A chunk is
    written only once ``inner`` has no buffered bytes left, so it reaches the socket as one
    ``send()`` of its own, and with TCP_NODELAY as its own segment. Any other frame written
    while chunks are pending waits behind them, so the byte order never changes.
    """

    def __init__(self, inner: asyncio.Transport, faults: ConnectionFaults) -> None:
        super().__init__()
        self._inner = inner
        self.faults = faults
        self._pending: collections.deque[Any] = collections.deque()
        self._pending_bytes = 0
        self._flusher: asyncio.Task[None] | None = None
        self._flushed: asyncio.Future[None] | None = None
        self._closing = False
        self.writes = 0  # write() calls made on the inner transport
        self.pongs_dropped = 0

        # asyncio already sets TCP_NODELAY on TCP sockets. Setting it again states that
        # small chunks must not wait for Nagle's algorithm.
        sock = inner.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---- writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.faults.drops_pongs and len(data) and data[0] & 0x0F == _OPCODE_PONG:
            self.pongs_dropped += 1
            return

        slow = self.faults.slow_writes
        if slow is None and not self._pending:
            self._inner.write(data)
            self.writes += 1
            return

        view = memoryview(data)
        if not len(view):
            return
        size = slow.chunk_size if slow is not None else len(view)
        for start in range(0, len(view), size):
            self._pending.append(bytes(view[start : start + size]))
        self._pending_bytes += len(view)
        self._start_flusher()

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="kitefeed-sim-slow-writes")

    async def _flush(self) -> None:
        """Write the pending chunks one at a time until none is left or the transport closes."""
        inner = self._inner
        try:
            while self._pending and not inner.is_closing():
                # A chunk written while asyncio still buffers bytes would be merged with
                # them into one send(), so wait until the socket took everything.
                if inner.get_write_buffer_size():
                    await asyncio.sleep(_BUFFER_POLL)
                    continue
                item = self._pending.popleft()
                if item is _EOF:
                    inner.write_eof()
                    continue
                if item is _CLOSE:
                    inner.close()
                    continue
                self._pending_bytes -= len(item)
                inner.write(item)
                self.writes += 1
                slow = self.faults.slow_writes
                if slow is not None and slow.delay > 0:
                    await asyncio.sleep(slow.delay)
        except Exception:
            logger.exception("slow writes failed; aborting the connection")
            inner.abort()
        finally:
            if inner.is_closing():
                self._pending.clear()
                self._pending_bytes = 0
            if not self._pending and self._flushed is not None and not self._flushed.done():
                self._flushed.set_result(None)

    async def wait_flushed(self) -> None:
        """Wait until every pending chunk is written or the transport closed."""
        while self._pending and not self._inner.is_closing():
            if self._flushed is None or self._flushed.done():
                self._flushed = asyncio.get_running_loop().create_future()
            self._start_flusher()
            await asyncio.shield(self._flushed)

    def write_eof(self) -> None:
        if self._pending:
            self._pending.append(_EOF)
        else:
            self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + self._pending_bytes

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    # ---- closing

    def close(self) -> None:
        self._closing = True
        if self._pending:
            self._pending.append(_CLOSE)
        else:
            self._inner.close()

    def is_closing(self) -> bool:
        return self._closing or self._inner.is_closing()

    def abort(self) -> None:
        """Close at once, discarding pending chunks."""
        self._pending.clear()
        self._pending_bytes = 0
        if self._flusher is not None:
            self._flusher.cancel()
        self._inner.abort()

    def reset(self) -> None:
        """Abort with a TCP reset: with SO_LINGER set to zero, closing the socket sends RST."""
        sock = self._inner.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    # ---- reading and the rest, unchanged

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)


class SimConnection(ServerConnection):
    """A server connection whose transport is a :class:`FaultTransport`.

    ``on_lost``, when set, is called once the TCP connection has closed, so after any
    WebSocket closing handshake.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.faults = ConnectionFaults()
        self.fault_transport: FaultTransport | None = None
        self.on_lost: Callable[[SimConnection], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.fault_transport = FaultTransport(transport, self.faults)
        super().connection_made(self.fault_transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            on_lost, self.on_lost = self.on_lost, None
            on_lost(self)
