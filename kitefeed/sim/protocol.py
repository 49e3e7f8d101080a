"""Kite ticker protocol pieces of the simulator that do no I/O: requests, rejections, frames."""

from __future__ import annotations

import dataclasses
import http
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from ..parsers import INDEX_SEGMENT, Mode, encode_frame, kind_for

__all__ = [
    "GARBAGE_KINDS",
    "MAX_PACKETS_PER_FRAME",
    "Request",
    "damaged_message",
    "encode_frames",
    "kinds_for",
    "parse_request",
    "rejection_body",
    "too_many_instruments_message",
]

MAX_PACKETS_PER_FRAME = 3000
"""Packets per binary message; larger batches are split. 3000 full packets are 558,002 bytes,
under the 1 MiB default message size limit of the websockets client."""

_MODES = {mode.wire_name: mode for mode in Mode}

# _KIND_TABLE[is_index, mode] is the packet kind number, so kinds for a whole
# subscription come from one fancy-indexing step instead of a call per token.
_KIND_TABLE = np.zeros((2, max(Mode) + 1), dtype=np.uint8)
for _mode in Mode:
    _KIND_TABLE[0, _mode] = kind_for(_mode, 1)
    _KIND_TABLE[1, _mode] = kind_for(_mode, INDEX_SEGMENT)


@dataclasses.dataclass(frozen=True)
class Request:
    """A client request: ``action`` is "subscribe", "unsubscribe" or "mode"; ``mode`` is set for "mode"."""

    action: str
    tokens: list[int]
    mode: Mode | None = None


def _tokens(values: Any) -> list[int] | None:
    """Return the unsigned 32-bit integers among ``values`` in order, or None if it is not a list."""
    if not isinstance(values, list):
        return None
    return [v for v in values if type(v) is int and 0 <= v <= 0xFFFF_FFFF]


def parse_request(message: str | bytes) -> Request | None:
    """Parse a client text message ``{"a": action, "v": value}``.

    Returns None for anything the server ignores: invalid JSON, another shape, an unknown
    action or mode. Entries of the token list that are not unsigned 32-bit integers
    (strings, floats, booleans) are dropped and the rest of the request still applies.
    """
    try:
        body = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None

    action, value = body.get("a"), body.get("v")
    if action in ("subscribe", "unsubscribe"):
        tokens = _tokens(value)
        return None if tokens is None else Request(action, tokens)
    if action == "mode" and isinstance(value, list) and len(value) == 2:
        mode = _MODES.get(value[0]) if isinstance(value[0], str) else None
        tokens = _tokens(value[1])
        if mode is None or tokens is None:
            return None
        return Request(action, tokens, mode)
    return None


def too_many_instruments_message(limit: int) -> str:
    """Return the text message Kite sends when a request exceeds ``limit`` instruments."""
    return orjson.dumps({"type": "error", "data": f"Can't subscribe to more than {limit} instruments."}).decode()


_REJECTIONS = {
    http.HTTPStatus.BAD_REQUEST: ("InputException", "missing api_key or access_token in the query string"),
    http.HTTPStatus.FORBIDDEN: ("TokenException", "Invalid api_key or access_token"),
    http.HTTPStatus.TOO_MANY_REQUESTS: ("NetworkException", "Too many connections for this api_key; the limit is {limit}"),
    http.HTTPStatus.BAD_GATEWAY: ("DataException", "Bad gateway"),
    http.HTTPStatus.SERVICE_UNAVAILABLE: ("NetworkException", "Service unavailable"),
}


def rejection_body(status: http.HTTPStatus, limit: int = 0) -> str:
    """Return the JSON body of a rejected handshake, shaped like the REST API's error envelope.

    The real server's body is undocumented and clients only read the status, so the error
    types are those the REST API uses for the same statuses. For 502 and 503 they are the
    exceptions of kiteconnect 5.2.2 whose default status that is (DataException and
    NetworkException). Other statuses get "GeneralException", whose default is 500.
    """
    error_type, message = _REJECTIONS.get(status, ("GeneralException", status.phrase))
    envelope = {"status": "error", "message": message.format(limit=limit), "error_type": error_type}
    return orjson.dumps(envelope).decode()


def kinds_for(segments: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """Return the uint8 packet kind for each pair of segment and mode (arrays of equal shape)."""
    return _KIND_TABLE[(segments == INDEX_SEGMENT).astype(np.intp), modes.astype(np.intp)]


def encode_frames(ticks: np.ndarray, limit: int = MAX_PACKETS_PER_FRAME) -> Iterator[bytes]:
    """Encode ``ticks`` (TICK_DTYPE, ``kind`` set) as binary messages of at most ``limit`` packets."""
    for start in range(0, len(ticks), limit):
        yield encode_frame(ticks[start : start + limit])


GARBAGE_KINDS = ("truncated", "unknown_length", "count_exceeds_data", "short_packet", "empty_packet")
"""Kinds of damage that :func:`damaged_message` can build."""

_UNKNOWN_LENGTH = 64  # no Kite packet kind is 64 bytes long


def damaged_message(good: bytes, count: int, kind: str) -> bytes:
    """Return a binary message with the ``count`` packets of ``good`` and one damaged packet.

    ``good`` is the packet part of a valid message (without its 2-byte count). The damage
    is one of :data:`GARBAGE_KINDS`:

    - "truncated": a last packet that declares 184 bytes but carries 92;
    - "unknown_length": a complete 64-byte packet in the middle;
    - "count_exceeds_data": a count one higher than the packets present;
    - "short_packet": a 2-byte packet in the middle;
    - "empty_packet": a packet of length zero in the middle.

    Each damage is one skipped packet for the decoder, counted as truncated, unknown
    length, missing, short and short packets in that order.
    """
    middle = _packet_boundary(good, count // 2)
    if kind == "truncated":
        packets = good + (184).to_bytes(2, "big") + bytes(92)
    elif kind == "unknown_length":
        packets = good[:middle] + _UNKNOWN_LENGTH.to_bytes(2, "big") + bytes(_UNKNOWN_LENGTH) + good[middle:]
    elif kind == "count_exceeds_data":
        packets = good
    elif kind == "short_packet":
        packets = good[:middle] + (2).to_bytes(2, "big") + bytes(2) + good[middle:]
    elif kind == "empty_packet":
        packets = good[:middle] + bytes(2) + good[middle:]
    else:
        raise ValueError(f"unknown garbage kind {kind!r}; expected one of {GARBAGE_KINDS}")
    return (count + 1).to_bytes(2, "big") + packets


def _packet_boundary(packets: bytes, index: int) -> int:
    """Return the offset in ``packets`` (length-prefixed packets) where packet ``index`` starts."""
    position = 0
    for _ in range(index):
        position += 2 + int.from_bytes(packets[position : position + 2], "big")
    return position
