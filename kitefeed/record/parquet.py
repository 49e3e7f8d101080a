"""Parquet files of decoded ticks, rotated by size or time, each completed atomically.

A file is written under a temporary name (``.parquet.part``) and renamed to its final
``.parquet`` name only after its footer is written and fsynced, so a ``.parquet`` file
is always complete. A sidecar ``<file>.json`` beside it counts the file's rows, its
first and last receive times and the records lost while it was open.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidRequestError
from ..parsers import TICK_DTYPE
from .files import FileNamer, fsync_directory, write_json_atomically
from .schema import TICK_SCHEMA, file_metadata, read_file_metadata, table_to_ticks, ticks_to_table

__all__ = ["PARQUET_SUFFIX", "TickFileWriter", "read_parquet_metadata", "read_ticks"]

logger = logging.getLogger(__name__)

PARQUET_SUFFIX = ".parquet"
_PART = ".part"


class TickFileWriter:
    """Write batches of ticks to Parquet files in ``directory``.

    Ticks are buffered and written as one row group per ``row_group_rows`` ticks (and at
    rotation and close); with ``rotate_bytes``, a row group contains at most
    ``rotate_bytes / 272`` ticks. A new file starts before a batch when the current file
    has reached ``rotate_bytes`` on disk, or when the batch's first ``recv_time`` is
    ``rotate_seconds`` or more after the file's first; either limit may be None. The
    size counts only row groups already written, so a file can exceed ``rotate_bytes``
    by up to one row group. Rotation never splits a batch.

    ``metadata`` (JSON-serialisable, for example ``{"feed": ..., "api_keys": [...]}``)
    is stored in each file's schema metadata under ``kitefeed``. Call :meth:`add_lost`
    with records lost upstream; each file's sidecar counts those added while it was open.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        prefix: str = "ticks",
        metadata: Mapping[str, Any] | None = None,
        rotate_bytes: int | None = 256 << 20,
        rotate_seconds: float | None = 3600.0,
        row_group_rows: int = 1 << 16,
        compression: str = "zstd",
    ) -> None:
        if rotate_bytes is not None and rotate_bytes <= 0:
            raise InvalidRequestError(f"invalid rotate_bytes {rotate_bytes!r}: expected a positive int or None")
        if rotate_seconds is not None and not rotate_seconds > 0:
            raise InvalidRequestError(f"invalid rotate_seconds {rotate_seconds!r}: expected a positive number or None")
        if row_group_rows <= 0:
            raise InvalidRequestError(f"invalid row_group_rows {row_group_rows!r}: expected a positive int")
        self._namer = FileNamer(Path(directory), prefix, PARQUET_SUFFIX)
        self._info = dict(metadata or {})
        self._schema = TICK_SCHEMA.with_metadata(file_metadata(self._info))
        self._rotate_bytes = rotate_bytes
        self._rotate_ns = None if rotate_seconds is None else int(rotate_seconds * 1e9)
        # A row group contains at most rotate_bytes of raw records, so that a file
        # overshoots rotate_bytes by less than that even before compression.
        if rotate_bytes is not None:
            row_group_rows = max(1, min(row_group_rows, rotate_bytes // TICK_DTYPE.itemsize))
        self._row_group_rows = row_group_rows
        self._compression = compression

        self._sink: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._pending: list[np.ndarray[Any, Any]] = []
        self._pending_rows = 0
        self._file_rows = 0
        self._file_first_ns = 0
        self._file_last_ns = 0
        self._file_lost = 0
        self._closed = False
        self.files: list[Path] = []
        """Final paths of the completed files, in order."""
        self.rows = 0
        """Ticks accepted over all files."""
        self.lost = 0
        """Records lost upstream over all files (the sum of :meth:`add_lost`)."""

    def write(self, ticks: np.ndarray[Any, Any]) -> None:
        """Add a batch: a 1-D array of :data:`TICK_DTYPE`, which is copied at once."""
        if self._closed:
            raise InvalidRequestError("invalid write: the Parquet writer is closed; open a new one")
        if ticks.dtype != TICK_DTYPE or ticks.ndim != 1:
            raise InvalidRequestError(
                f"invalid ticks: expected a 1-D array of TICK_DTYPE, found {ticks.ndim}-D of {ticks.dtype}"
            )
        if not len(ticks):
            return
        recv = ticks["recv_time"].view(np.int64)
        first_ns, last_ns = int(recv[0]), int(recv.max())

        if self._writer is None or self._due_for_rotation(first_ns):
            self._rotate(first_ns)

        # A copy, because the batch may be a view into a ring that the writer overwrites.
        # A ring's dtype equals TICK_DTYPE but is not flagged as an aligned struct, and
        # np.concatenate would drop its padding; the view restores the flag.
        self._pending.append(np.array(ticks.view(TICK_DTYPE), copy=True))
        self._pending_rows += len(ticks)
        self._file_rows += len(ticks)
        self._file_last_ns = max(self._file_last_ns, last_ns)
        self.rows += len(ticks)
        if self._pending_rows >= self._row_group_rows:
            self._write_pending()

    def add_lost(self, count: int) -> None:
        """Count ``count`` records lost upstream against the current (or next) file."""
        self._file_lost += count
        self.lost += count

    def close(self) -> None:
        """Complete the current file. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._finish()

    def _due_for_rotation(self, first_ns: int) -> bool:
        if self._rotate_ns is not None and first_ns - self._file_first_ns >= self._rotate_ns:
            return True
        assert self._sink is not None
        return self._rotate_bytes is not None and self._sink.tell() >= self._rotate_bytes

    def _rotate(self, first_ns: int) -> None:
        self._finish()
        path = self._namer.next_path(first_ns)
        temporary = path.with_name(path.name + _PART)
        self._sink = pa.OSFile(str(temporary), "wb")
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression=self._compression)
        self._path = path
        self._file_rows = 0
        self._file_first_ns = first_ns
        self._file_last_ns = first_ns

    def _write_pending(self) -> None:
        if not self._pending_rows:
            return
        assert self._writer is not None
        ticks = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._writer.write_table(ticks_to_table(ticks, self._schema.metadata), row_group_size=len(ticks))
        self._pending.clear()
        self._pending_rows = 0

    def _finish(self) -> None:
        if self._writer is None:
            return
        assert self._sink is not None and self._path is not None
        self._write_pending()
        self._writer.close()
        self._sink.close()
        path, self._writer, self._sink, self._path = self._path, None, None, None
        temporary = path.with_name(path.name + _PART)

        # fsync before the rename, so that the final name never points at missing data.
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        write_json_atomically(path.with_name(path.name + ".json"), self._sidecar(path))
        os.replace(temporary, path)
        fsync_directory(path.parent)
        self.files.append(path)
        logger.info("parquet file %s completed: %d ticks, %d lost", path, self._file_rows, self._file_lost)
        self._file_lost = 0

    def _sidecar(self, path: Path) -> dict[str, Any]:
        return {
            "file": path.name,
            "rows": self._file_rows,
            "first_recv_time_ns": self._file_first_ns,
            "last_recv_time_ns": self._file_last_ns,
            "first_recv_time": str(np.datetime64(self._file_first_ns, "ns")) + "Z",
            "last_recv_time": str(np.datetime64(self._file_last_ns, "ns")) + "Z",
            "lost": self._file_lost,
            **self._info,
        }

    def __enter__(self) -> TickFileWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def read_ticks(paths: Iterable[str | os.PathLike[str]]) -> np.ndarray[Any, Any]:
    """Read the Parquet files ``paths`` in order into one new 1-D array of :data:`TICK_DTYPE`."""
    parts = [table_to_ticks(pq.read_table(path)) for path in paths]
    if not parts:
        return table_to_ticks(TICK_SCHEMA.empty_table())
    return np.concatenate(parts)


def read_parquet_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the ``kitefeed`` metadata object stored in the Parquet file ``path``, {} when absent."""
    return read_file_metadata(pq.read_schema(path))
