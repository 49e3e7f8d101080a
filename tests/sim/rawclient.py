"""A bare WebSocket client over a blocking TCP socket, to see the frames the server writes.

websockets reassembles fragmented messages, so tests that check fragmentation read the
frames here instead. Only what those tests need is implemented: the opening handshake,
masked text frames out, and unmasked frames in.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import struct

from kitefeed.sim import Simulator

from .client import KEY, TOKEN, WAIT, url


@dataclasses.dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes


class RawClient:
    """One WebSocket connection on a blocking socket; every read times out after WAIT seconds."""

    def __init__(self, sim: Simulator, key: str = KEY, token: str = TOKEN) -> None:
        self._sock = socket.create_connection(("127.0.0.1", sim.port), timeout=WAIT)
        self._buffer = b""
        try:
            self._handshake(url(sim, key, token).removeprefix(sim.url))
        except BaseException:
            self._sock.close()
            raise

    def _handshake(self, target: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.1 101"), status

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def send_text(self, text: str) -> None:
        """Send ``text`` as one masked text frame (clients must mask)."""
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x81, 0x80 | length)
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        self._sock.sendall(header + mask + masked)

    def read_frame(self) -> Frame:
        """Read one frame; the server never masks."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8))[0]
        return Frame(bool(first & 0x80), first & 0x0F, self._take(length))

    def read_message(self) -> list[Frame]:
        """Read the frames of the next data message, skipping control frames."""
        frames: list[Frame] = []
        for _ in range(100_000):
            frame = self.read_frame()
            if frame.opcode >= 0x8:
                continue
            frames.append(frame)
            if frame.fin:
                return frames
        raise AssertionError("no final frame within 100,000 frames")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
