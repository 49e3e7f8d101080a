"""Journal files: the raw WebSocket messages of a session, append-only, with receive times.

A journal keeps every message as it arrived, so that any day can be decoded again with
a later :class:`~kitefeed.parsers.Decoder`. All integers are little-endian.

File layout::

    file header, 24 bytes
        magic           8 bytes   b"KFJOURN\\n"
        version         u16       1
        reserved        u16       0
        metadata_length u32       bytes of the metadata that follows
        created_ns      i64       creation time, ns since the Unix epoch (UTC)
    metadata            metadata_length bytes of UTF-8 JSON, an object
    records, each:
        length          u32       payload bytes
        crc32           u32       zlib.crc32 of the next 12 header bytes, then the payload
        recv_time_ns    i64       receive time, ns since the Unix epoch (UTC)
        key_index       u16       index of the API key in the feed
        connection      u8        connection of the key (0-2)
        flags           u8        bit 0 set: a text message; clear: binary
        payload         length bytes

A process killed in the middle of a write leaves a partial record at the end. The
reader stops at the first record that is incomplete or fails its CRC, and counts it and
the bytes after it as a damaged tail.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple

import msgspec

from ..errors import InvalidRequestError
from .files import FileNamer, fsync_directory

__all__ = [
    "JOURNAL_MAGIC",
    "JOURNAL_SUFFIX",
    "JOURNAL_VERSION",
    "JournalMessage",
    "JournalReadStats",
    "JournalWriter",
    "read_journal",
    "read_metadata",
]

logger = logging.getLogger(__name__)

JOURNAL_MAGIC = b"KFJOURN\n"
JOURNAL_VERSION = 1
JOURNAL_SUFFIX = ".kfj"

_FILE_HEADER = struct.Struct("<8sHHIq")
_LENGTH_CRC = struct.Struct("<II")
_FIELDS = struct.Struct("<qHBB")
_TEXT_FLAG = 1
_MAX_PAYLOAD = 64 << 20
"""Largest payload accepted, in bytes; the length of a damaged header is usually far above it."""


class JournalMessage(NamedTuple):
    """One WebSocket message read from a journal."""

    recv_time_ns: int
    """Receive time in ns since the Unix epoch (UTC)."""
    key_index: int
    connection: int
    payload: bytes
    is_text: bool


class JournalReadStats(msgspec.Struct):
    """Counters of one pass over journal files; updated while iterating."""

    files: int = 0
    messages: int = 0
    payload_bytes: int = 0
    damaged_tails: int = 0
    """Files that ended in an incomplete or corrupt record."""
    damaged_bytes: int = 0
    """Bytes skipped in those damaged tails."""


class JournalWriter:
    """Append raw WebSocket messages to journal files in ``directory``, rotating them.

    A new file starts when the current one has reached ``rotate_bytes``, or when a
    message's ``recv_time_ns`` is ``rotate_seconds`` or more after the first message of
    the current file (either limit may be None). Files are named
    ``<prefix>-<UTC start>-<sequence>.kfj`` and are never appended to after rotation.
    ``metadata`` (JSON-serialisable, for example ``{"feed": ..., "api_keys": [...]}``)
    is stored in every file's header.

    Durability: appends go to a user-space buffer. It is written to the file at least
    every ``flush_seconds`` (checked on each append), at rotation and at :meth:`close`,
    and with ``fsync`` the file is also fsynced then. A killed process therefore loses
    up to ``flush_seconds`` of messages and may leave one partial record, which the
    reader skips. With ``fsync=False``, a power loss may lose more.

    Not thread-safe: call it from one thread.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        prefix: str = "journal",
        metadata: Mapping[str, Any] | None = None,
        rotate_bytes: int | None = 256 << 20,
        rotate_seconds: float | None = None,
        flush_seconds: float = 1.0,
        fsync: bool = True,
    ) -> None:
        if rotate_bytes is not None and rotate_bytes <= 0:
            raise InvalidRequestError(f"invalid rotate_bytes {rotate_bytes!r}: expected a positive int or None")
        if rotate_seconds is not None and not rotate_seconds > 0:
            raise InvalidRequestError(f"invalid rotate_seconds {rotate_seconds!r}: expected a positive number or None")
        if not flush_seconds >= 0:
            raise InvalidRequestError(f"invalid flush_seconds {flush_seconds!r}: expected a number >= 0")
        self._metadata = json.dumps(dict(metadata or {})).encode()
        self._namer = FileNamer(Path(directory), prefix, JOURNAL_SUFFIX)
        self._rotate_bytes = rotate_bytes
        self._rotate_ns = None if rotate_seconds is None else int(rotate_seconds * 1e9)
        self._flush_seconds = flush_seconds
        self._fsync = fsync

        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        self._first_recv_ns = 0
        self._last_flush = 0.0
        self._closed = False
        self.files: list[Path] = []
        """Paths of every file this writer created, in order."""

    @property
    def path(self) -> Path | None:
        """Path of the file being written, None before the first append and after close."""
        return self._path

    def append(self, recv_time_ns: int, key_index: int, connection: int, payload: bytes, is_text: bool) -> None:
        """Append one message. ``payload`` is the message's bytes (UTF-8 for a text message)."""
        if self._closed:
            raise InvalidRequestError("invalid append: the journal writer is closed; open a new one")
        if len(payload) > _MAX_PAYLOAD:
            raise InvalidRequestError(
                f"invalid payload of {len(payload)} bytes: the maximum of a journal record is {_MAX_PAYLOAD}"
            )

        if self._file is None or self._due_for_rotation(recv_time_ns):
            self._rotate(recv_time_ns)
        assert self._file is not None

        fields = _FIELDS.pack(recv_time_ns, key_index, connection, _TEXT_FLAG if is_text else 0)
        self._file.write(_LENGTH_CRC.pack(len(payload), zlib.crc32(payload, zlib.crc32(fields))))
        self._file.write(fields)
        self._file.write(payload)
        self._size += _LENGTH_CRC.size + _FIELDS.size + len(payload)

        now = time.monotonic()
        if now - self._last_flush >= self._flush_seconds:
            self._flush()
            self._last_flush = now

    def close(self) -> None:
        """Flush, fsync (if enabled) and close the current file. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._finish()

    def _due_for_rotation(self, recv_time_ns: int) -> bool:
        if self._rotate_bytes is not None and self._size >= self._rotate_bytes:
            return True
        return self._rotate_ns is not None and recv_time_ns - self._first_recv_ns >= self._rotate_ns

    def _rotate(self, recv_time_ns: int) -> None:
        self._finish()

        path = self._namer.next_path(recv_time_ns)
        # "xb" never overwrites: a name taken by another writer raises FileExistsError.
        file = open(path, "xb")
        header = _FILE_HEADER.pack(JOURNAL_MAGIC, JOURNAL_VERSION, 0, len(self._metadata), time.time_ns())
        file.write(header)
        file.write(self._metadata)
        self._file, self._path = file, path
        self._size = len(header) + len(self._metadata)
        self._first_recv_ns = recv_time_ns
        self.files.append(path)
        fsync_directory(path.parent)
        logger.info("journal file %s started", path)

    def _flush(self) -> None:
        assert self._file is not None
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def _finish(self) -> None:
        if self._file is None:
            return
        self._flush()
        self._file.close()
        logger.info("journal file %s finished: %d bytes", self._path, self._size)
        self._file, self._path = None, None

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the metadata object stored in the header of the journal file ``path``."""
    with open(path, "rb") as file:
        return _read_header(file, Path(path))


def read_journal(
    paths: str | os.PathLike[str] | list[str | os.PathLike[str]] | list[Path],
    stats: JournalReadStats | None = None,
) -> Iterator[JournalMessage]:
    """Yield the messages of the journal files ``paths``, file after file, in file order.

    A damaged tail ends its file: it is logged and counted in ``stats``, and reading
    goes on with the next file. Raises InvalidRequestError for a file that is not a
    journal of this version, and OSError when a file cannot be read.
    """
    stats = stats if stats is not None else JournalReadStats()
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    for path in files:
        stats.files += 1
        yield from _read_file(Path(path), stats)


def _read_header(file: BinaryIO, path: Path) -> dict[str, Any]:
    head = file.read(_FILE_HEADER.size)
    if len(head) < _FILE_HEADER.size or head[:8] != JOURNAL_MAGIC:
        raise InvalidRequestError(f"file {str(path)!r} is not a kitefeed journal: its header is missing or wrong")
    _, version, _, metadata_length, _ = _FILE_HEADER.unpack(head)
    if version != JOURNAL_VERSION:
        raise InvalidRequestError(
            f"journal {str(path)!r} has version {version}; this kitefeed reads version {JOURNAL_VERSION}: "
            "upgrade kitefeed"
        )
    raw = file.read(metadata_length)
    try:
        metadata = json.loads(raw)
    except ValueError:
        metadata = None
    if len(raw) < metadata_length or not isinstance(metadata, dict):
        raise InvalidRequestError(f"journal {str(path)!r} has a damaged header: its metadata is not a JSON object")
    return metadata


def _read_file(path: Path, stats: JournalReadStats) -> Iterator[JournalMessage]:
    size = path.stat().st_size
    with open(path, "rb") as file:
        _read_header(file, path)
        position = file.tell()
        while position < size:
            message = _read_record(file)
            if message is None:
                stats.damaged_tails += 1
                stats.damaged_bytes += size - position
                logger.warning("journal %s: skipped a damaged tail of %d bytes at offset %d", path, size - position, position)
                return
            position = file.tell()
            stats.messages += 1
            stats.payload_bytes += len(message.payload)
            yield message


def _read_record(file: BinaryIO) -> JournalMessage | None:
    """Read the record at the file's position; None if it is incomplete or corrupt."""
    head = file.read(_LENGTH_CRC.size + _FIELDS.size)
    if len(head) < _LENGTH_CRC.size + _FIELDS.size:
        return None
    length, crc = _LENGTH_CRC.unpack_from(head)
    fields = head[_LENGTH_CRC.size :]
    recv_time_ns, key_index, connection, flags = _FIELDS.unpack(fields)
    if length > _MAX_PAYLOAD or flags & ~_TEXT_FLAG:
        return None
    payload = file.read(length)
    if len(payload) < length or zlib.crc32(payload, zlib.crc32(fields)) != crc:
        return None
    return JournalMessage(recv_time_ns, key_index, connection, payload, bool(flags & _TEXT_FLAG))
