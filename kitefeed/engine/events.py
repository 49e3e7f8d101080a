"""Events a feed reports to the application: server text messages and connection changes."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["FeedEvent", "text_kind"]


class FeedEvent(msgspec.Struct, frozen=True):
    """Something that happened on one key's connection, or to its worker.

    ``kind`` is ``"order"``, ``"error"``, ``"message"``, ``"unknown"`` or ``"invalid"`` for
    a text message from the server (``data`` is the decoded message object from
    :func:`kitefeed.parsers.parse_text`), ``"connection"`` for a connection state change
    (``data`` is the new state, ``detail`` the reason), ``"worker"`` when a worker
    process exited or was restarted (``data`` is ``"exited"`` or ``"restarted"``), and
    ``"failover"`` when instruments moved off a key whose token was rejected (``data`` is
    the number moved) or back to it after a new token (``data`` is minus that number).
    """

    api_key: str
    key_index: int
    connection: int  # -1 for events about the worker process
    kind: str
    data: Any
    detail: str = ""


def text_kind(message: object) -> str:
    """Return the event kind of a message from :func:`kitefeed.parsers.parse_text`."""
    from ..parsers.text import BrokerMessage, ErrorMessage, InvalidMessage, OrderUpdate

    kinds: dict[type, str] = {
        OrderUpdate: "order",
        ErrorMessage: "error",
        BrokerMessage: "message",
        InvalidMessage: "invalid",
    }
    return kinds.get(type(message), "unknown")
