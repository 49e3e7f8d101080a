"""Capturing raw messages with a WebSocket client of our own, for journals.

A live :class:`~kitefeed.Feed` writes the journals of its own raw messages when it is
started with ``journal_dir`` (each worker appends what it receives). This module makes
journals without a feed, with a separate client that subscribes to a ticker server
(the simulator, in ``kitefeed record --from-sim`` and in tests). It passes every
message to a callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Callable

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ..parsers import Mode

__all__ = ["MessageHandler", "capture_messages"]

logger = logging.getLogger(__name__)

MessageHandler = Callable[[int, int, int, bytes, bool], None]
"""Called as ``handler(recv_time_ns, key_index, connection, payload, is_text)``, the
signature of :meth:`~kitefeed.record.JournalWriter.append`."""

_SUBSCRIBE_BATCH = 500
"""Tokens per subscribe request."""


async def capture_messages(
    url: str,
    api_key: str,
    access_token: str,
    tokens: dict[Mode, list[int]],
    handler: MessageHandler,
    *,
    seconds: float,
    key_index: int = 0,
    connection: int = 0,
) -> int:
    """Connect to the ticker server at ``url``, subscribe ``tokens`` by mode, and pass on every message.

    Receives for ``seconds`` seconds or until the server closes the connection, and
    returns the number of messages passed to ``handler``. ``key_index`` and
    ``connection`` are the values passed to the handler for this client.
    """
    query = urllib.parse.urlencode({"api_key": api_key, "access_token": access_token})
    received = 0
    async with connect(f"{url}/?{query}", open_timeout=10, close_timeout=2, max_size=16 << 20) as websocket:
        logger.info("capturing from %s for %.1f s", url, seconds)
        for mode, mode_tokens in tokens.items():
            for start in range(0, len(mode_tokens), _SUBSCRIBE_BATCH):
                batch = mode_tokens[start : start + _SUBSCRIBE_BATCH]
                await websocket.send(orjson.dumps({"a": "subscribe", "v": batch}).decode())
                await websocket.send(orjson.dumps({"a": "mode", "v": [mode.wire_name, batch]}).decode())

        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(websocket.recv(), left)
            except TimeoutError:
                break
            except ConnectionClosed as exc:
                logger.info("capture connection closed by the server: %s", exc)
                break
            recv_time_ns = time.time_ns()
            if isinstance(message, str):
                handler(recv_time_ns, key_index, connection, message.encode(), True)
            else:
                handler(recv_time_ns, key_index, connection, message, False)
            received += 1
    return received
