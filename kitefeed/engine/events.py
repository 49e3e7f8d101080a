"""Events a feed reports to the application: server text messages and connection changes."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["FeedEvent"]


class FeedEvent(msgspec.Struct, frozen=True):
    """Something that happened on one key's connection, or to its worker.

    ``kind`` is ``"order"``, ``"error"``, ``"message"``, ``"unknown"`` or ``"invalid"`` for
    a text message from the server (``data`` holds the decoded message object from
    :func:`kitefeed.parsers.parse_text`), ``"connection"`` for a connection state change
    (``data`` is the new state, ``detail`` the reason), and ``"worker"`` when a worker
    process exited or was restarted.
    """

    api_key: str
    key_index: int
    connection: int  # -1 for events about the worker process
    kind: str
    data: Any
    detail: str = ""
