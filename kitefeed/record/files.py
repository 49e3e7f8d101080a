"""File names and durable writes shared by the journal and the Parquet writer."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError

__all__ = ["FileNamer", "fsync_directory", "write_json_atomically"]


class FileNamer:
    """Names of rotated files: ``<prefix>-<UTC start>-<sequence><suffix>`` in ``directory``.

    The start is the receive time of the file's first message or tick, for example
    ``ticks-20240611T034501.250Z-0003.parquet``. The sequence counts the files of this
    namer, so names stay unique and sort in order even when two files start in the same
    millisecond. The directory is created if missing.
    """

    def __init__(self, directory: Path, prefix: str, suffix: str) -> None:
        if not prefix or "/" in prefix:
            raise InvalidRequestError(f"invalid file prefix {prefix!r}: expected a non-empty name without '/'")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.prefix = prefix
        self.suffix = suffix
        self._sequence = 0

    def next_path(self, start_ns: int) -> Path:
        """Return the path of the next file, whose first record was received at ``start_ns``."""
        start = datetime.datetime.fromtimestamp(start_ns / 1e9, tz=datetime.timezone.utc)
        stamp = start.strftime("%Y%m%dT%H%M%S.") + f"{start.microsecond // 1000:03d}Z"
        path = self.directory / f"{self.prefix}-{stamp}-{self._sequence:04d}{self.suffix}"
        self._sequence += 1
        return path


def fsync_directory(directory: Path) -> None:
    """Fsync ``directory``, so that a file created or renamed in it survives a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` through a temporary file and a rename, fsyncing both."""
    temporary = path.with_name(path.name + ".part")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=2)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)
