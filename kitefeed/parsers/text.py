"""Typed objects for the JSON text messages that the Kite ticker sends.

The server sends UTF-8 JSON objects ``{"type": ..., "data": ...}``: ``order`` (an order
update with the postback's fields), ``error`` (a string) and ``message`` (a broker
message, any JSON). :func:`parse_text` never raises: a message of an unknown type is kept
as :class:`UnknownMessage`, and text that is not such an object becomes
:class:`InvalidMessage`, so callers can log what they could not use.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

__all__ = [
    "BrokerMessage",
    "ErrorMessage",
    "InvalidMessage",
    "OrderUpdate",
    "TextMessage",
    "UnknownMessage",
    "parse_text",
]


class OrderUpdate(msgspec.Struct, frozen=True):
    """An ``order`` message: a change of state of one of the user's orders.

    ``data`` has the fields of an HTTP order postback (``order_id``, ``status``, ...);
    its timestamps are strings ``YYYY-MM-DD HH:MM:SS`` in IST.
    """

    data: dict[str, Any]


class ErrorMessage(msgspec.Struct, frozen=True):
    """An ``error`` message, for example a subscription beyond 3000 instruments.

    The connection stays open after it.
    """

    data: str


class BrokerMessage(msgspec.Struct, frozen=True):
    """A ``message`` message from the broker; ``data`` is any JSON value, kept as decoded."""

    data: Any


class UnknownMessage(msgspec.Struct, frozen=True):
    """A JSON object with a string ``type`` that kitefeed does not know; ``data`` is None if absent."""

    type: str
    data: Any


class InvalidMessage(msgspec.Struct, frozen=True):
    """Text that is not a message this module can type.

    This covers invalid JSON, JSON that is not an object with a string ``type``, and an
    ``order`` or ``error`` message whose ``data`` has the wrong shape. ``text`` is the
    message as received (invalid UTF-8 replaced by U+FFFD); ``reason`` describes what was wrong.
    """

    text: str
    reason: str = ""


TextMessage = Union[OrderUpdate, ErrorMessage, BrokerMessage, UnknownMessage, InvalidMessage]
"""Any object that :func:`parse_text` returns."""


class _Envelope(msgspec.Struct):
    type: str
    # Raw defers decoding of data until the type is known; an empty Raw means absent.
    data: msgspec.Raw = msgspec.Raw()


_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope)
_ORDER_DATA_DECODER = msgspec.json.Decoder(dict[str, Any])
_ERROR_DATA_DECODER = msgspec.json.Decoder(str)
_ANY_DECODER = msgspec.json.Decoder()


def _as_text(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    return bytes(message).decode("utf-8", errors="replace")


def parse_text(message: str | bytes) -> TextMessage:
    """Parse one text message from the ticker into a typed object; never raises.

    Members other than ``type`` and ``data`` are ignored.
    """
    try:
        envelope = _ENVELOPE_DECODER.decode(message)
    except msgspec.DecodeError as error:
        return InvalidMessage(_as_text(message), f"not a JSON object with a string 'type': {error}")

    raw = envelope.data
    try:
        if envelope.type == "order":
            return OrderUpdate(_ORDER_DATA_DECODER.decode(raw))
        if envelope.type == "error":
            return ErrorMessage(_ERROR_DATA_DECODER.decode(raw))
        data = _ANY_DECODER.decode(raw) if len(raw) else None
    except msgspec.DecodeError as error:
        # An empty Raw (absent data) also lands here for order and error messages.
        found = str(error) if len(raw) else "data is missing"
        return InvalidMessage(_as_text(message), f"invalid data for type {envelope.type!r}: {found}")

    if envelope.type == "message":
        return BrokerMessage(data)
    return UnknownMessage(envelope.type, data)
