"""Load captured binary messages for the simulator to replay.

Two file formats are read. A ``.bin`` file is one raw binary WebSocket message, sent as
is, so it may be malformed on purpose to test a decoder. A ``.packet`` file is base64 text
of one bare packet without the frame header, as in Zerodha's kiteconnect-mocks
repository; the loader wraps it into a one-packet frame.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import InvalidRequestError
from ..parsers.layout import LENGTH_KIND

__all__ = ["frame_from_packet", "load_replay"]


def frame_from_packet(packet: bytes) -> bytes:
    """Wrap one bare packet (8, 28, 32, 44 or 184 bytes) into a one-packet binary message."""
    if len(packet) not in LENGTH_KIND:
        raise InvalidRequestError(
            f"invalid packet length {len(packet)}: expected one of {sorted(LENGTH_KIND)} bytes"
        )
    return (1).to_bytes(2, "big") + len(packet).to_bytes(2, "big") + packet


def _load_one(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".bin":
        if not data:
            raise InvalidRequestError(f"replay file {path} is empty: expected one binary message")
        return data
    if path.suffix == ".packet":
        try:
            packet = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestError(f"replay file {path} is not valid base64: {exc}") from exc
        try:
            return frame_from_packet(packet)
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"replay file {path}: {exc}") from exc
    raise InvalidRequestError(f"invalid replay file {path}: expected a .bin or .packet file")


def load_replay(paths: Iterable[str | os.PathLike[str]]) -> list[bytes]:
    """Return one binary message per file in ``paths``, in the given order.

    Raises :class:`~kitefeed.errors.InvalidRequestError` naming the file for an unknown
    suffix, an empty ``.bin`` or a ``.packet`` that is not base64 of a valid packet.
    Raises ``OSError`` when a file cannot be read.
    """
    return [_load_one(Path(path)) for path in paths]
