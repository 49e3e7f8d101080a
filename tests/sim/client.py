"""WebSocket client helpers for the simulator tests: URLs, bounded receives, frame walking."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from kitefeed.parsers.decoder import Decoder
from kitefeed.sim import Simulator

KEY, TOKEN = "key-a", "token-a"
OTHER_KEY, OTHER_TOKEN = "key-b", "token-b"
CREDENTIALS = {KEY: TOKEN, OTHER_KEY: OTHER_TOKEN}

NSE_TOKEN = 408065  # segment 1
INDEX_TOKEN = 256265  # NIFTY 50, segment 9
CDS_TOKEN = 0x0001_2303  # segment 3

WAIT = 10.0  # seconds any single wait in a test may take before it fails

_T = TypeVar("_T")


def run(coroutine: Coroutine[Any, Any, _T], seconds: float = 60.0) -> _T:
    """Run ``coroutine`` in a new event loop, failing after ``seconds``."""
    return asyncio.run(asyncio.wait_for(coroutine, seconds))


def url(sim: Simulator, key: str = KEY, token: str = TOKEN, path: str = "/", extra: str = "") -> str:
    query = urllib.parse.urlencode({"api_key": key, "access_token": token})
    return f"{sim.url}{path}?{query}{extra}"


def open_client(sim: Simulator, key: str = KEY, token: str = TOKEN) -> Any:
    """Return ``connect(...)`` for ``key``; use it as ``async with``."""
    return connect(url(sim, key, token), open_timeout=WAIT, close_timeout=2)


async def handshake_status(target: str) -> int:
    """Return the HTTP status of a handshake to ``target`` (101 when it succeeds)."""
    try:
        async with connect(target, open_timeout=WAIT, close_timeout=2):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def send_json(ws: ClientConnection, action: str, value: Any) -> None:
    await ws.send(json.dumps({"a": action, "v": value}))


async def receive_until(
    ws: ClientConnection, done: Callable[[bytes | str], bool], seconds: float = WAIT
) -> list[bytes | str]:
    """Receive messages until ``done(message)`` is true; fail after ``seconds``.

    Returns every message received, the matching one last.
    """
    received: list[bytes | str] = []
    async with asyncio.timeout(seconds):
        while True:
            message = await ws.recv()
            received.append(message)
            if done(message):
                return received


async def receive_for(ws: ClientConnection, seconds: float) -> list[bytes | str]:
    """Return every message received within ``seconds``."""
    received: list[bytes | str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            received.append(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
    return received


async def wait_for_state(check: Callable[[], bool], seconds: float = WAIT) -> None:
    """Poll ``check`` every 10 ms until it is true; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.01)


def is_frame(message: bytes | str) -> bool:
    """Whether ``message`` is a binary market-data frame (not a heartbeat or text)."""
    return isinstance(message, bytes) and len(message) >= 2


def decode(message: bytes) -> np.ndarray:
    return Decoder().decode(message)


def packet_lengths(frame: bytes) -> dict[int, int]:
    """Return the wire length of each token's packet in ``frame``, walking the length prefixes."""
    count = int.from_bytes(frame[:2], "big")
    position, lengths = 2, {}
    for _ in range(count):
        length = int.from_bytes(frame[position : position + 2], "big")
        token = int.from_bytes(frame[position + 2 : position + 6], "big")
        lengths[token] = length
        position += 2 + length
    assert position == len(frame), f"frame of {len(frame)} bytes declares {position} bytes"
    return lengths


def has_token(token: int) -> Callable[[bytes | str], bool]:
    """Return a predicate for frames that carry a packet of ``token``."""
    return lambda message: is_frame(message) and token in packet_lengths(message)  # type: ignore[arg-type]
