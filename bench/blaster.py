"""A minimal ticker server that sends one binary message over and over, as fast as TCP takes it.

It plays Kite at saturation: the worker finds many messages in each read, so
the benchmark measures the worker's cost per message without one wake-up per message.
It accepts any handshake (it checks no credentials), answers it per RFC 6455, reads
and discards what the client sends, and stops after ``seconds``. It runs in a child
process so that its Python loop does not share the benchmark's interpreter.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from multiprocessing.connection import Connection

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MESSAGES_PER_WRITE = 64


def binary_frame(message: bytes) -> bytes:
    """Return ``message`` as one unmasked, final WebSocket binary frame (server to client)."""
    size = len(message)
    if size < 126:
        header = bytes([0x82, size])
    elif size < 1 << 16:
        header = bytes([0x82, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x82, 127]) + size.to_bytes(8, "big")
    return header + message


def serve(control: Connection, message: bytes, seconds: float) -> None:
    """Serve on 127.0.0.1 (an ephemeral port, sent on ``control``) until ``seconds`` pass."""
    asyncio.run(_serve(control, message, seconds))


async def _serve(control: Connection, message: bytes, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    burst = binary_frame(message) * _MESSAGES_PER_WRITE
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        drain = loop.create_task(_discard(reader))
        deadline = loop.time() + seconds
        try:
            while loop.time() < deadline:
                writer.write(burst)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            drain.cancel()
            writer.close()
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    control.send(server.sockets[0].getsockname()[1])
    async with server:
        try:
            await asyncio.wait_for(done.wait(), seconds + 30)
        except TimeoutError:
            pass


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass
