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
    "MAX_PACKETS_PER_FRAME",
    "Request",
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
}


def rejection_body(status: http.HTTPStatus, limit: int = 0) -> str:
    """Return the JSON body of a rejected handshake, shaped like the REST API's error envelope.

    The real server's body is undocumented and clients only read the status, so the error
    types are those the REST API uses for the same statuses.
    """
    error_type, message = _REJECTIONS[status]
    envelope = {"status": "error", "message": message.format(limit=limit), "error_type": error_type}
    return orjson.dumps(envelope).decode()


def kinds_for(segments: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """Return the uint8 packet kind for each pair of segment and mode (arrays of equal shape)."""
    return _KIND_TABLE[(segments == INDEX_SEGMENT).astype(np.intp), modes.astype(np.intp)]


def encode_frames(ticks: np.ndarray, limit: int = MAX_PACKETS_PER_FRAME) -> Iterator[bytes]:
    """Encode ``ticks`` (TICK_DTYPE, ``kind`` set) as binary messages of at most ``limit`` packets."""
    for start in range(0, len(ticks), limit):
        yield encode_frame(ticks[start : start + limit])
