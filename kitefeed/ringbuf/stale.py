"""Find and remove segments left in /dev/shm by processes that died without unlinking them."""

from __future__ import annotations

import logging
import os
import re
import time

import numpy as np

from . import layout, segment
from .doorbell import DOORBELL_MAGIC
from .doorbell import OWNER_PID as DOORBELL_OWNER_PID
from .doorbell import OWNER_START as DOORBELL_OWNER_START
from .liveness import process_alive, process_start_time

__all__ = ["LEFTOVER_SECONDS", "find_stale_segments", "remove_stale_segments"]

logger = logging.getLogger(__name__)

LEFTOVER_SECONDS = 5.0
"""Age after which a segment that is neither a ring nor a doorbell counts as a leftover.

Creation writes a temporary file and renames it within milliseconds, so a younger
unreadable file may still be in the middle of its creation."""

_TEMPORARY = re.compile(r"\.init-(\d+)-[0-9a-f]+$")


def find_stale_segments(prefix: str) -> list[str]:
    """Return the sorted names of the stale segments whose names start with ``prefix``.

    A segment is stale when it is a ring or a doorbell whose owner process has exited,
    or when it is the temporary file of an interrupted creation or a file shorter than a
    ring header, older than :data:`LEFTOVER_SECONDS`. A ring or doorbell whose owner is
    alive is never stale. Neither is a ring with the kitefeed magic number but another
    layout version, nor a longer file of another kind, because their owners cannot be read.
    """
    return [name for name in segment.list_segments(prefix) if _is_stale(name)]


def remove_stale_segments(prefix: str) -> list[str]:
    """Unlink the segments that :func:`find_stale_segments` returns and return their names.

    Each segment is checked again right before it is unlinked. Processes that still
    map a removed segment keep their mapping.
    """
    removed = []
    for name in find_stale_segments(prefix):
        if _is_stale(name) and segment.unlink_segment(name):
            removed.append(name)

    if removed:
        logger.info("removed %d stale shared-memory segments with prefix %s: %s", len(removed), prefix, removed)
    return removed


def _is_stale(name: str) -> bool:
    path = segment.SHM_DIR / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        info = os.fstat(fd)
        head = os.pread(fd, 8 * layout.WORD_COUNT, 0)
    finally:
        os.close(fd)

    match = _TEMPORARY.search(name)
    if match is not None:
        return process_start_time(int(match.group(1))) is None or _older_than_leftover(info.st_mtime)

    owner = _owner(head)
    if owner is not None:
        return not process_alive(*owner)
    if len(head) >= 8 and int.from_bytes(head[:8], "little") == layout.MAGIC:
        logger.info("kept segment %s: it is a ring of another layout version, whose owner is unknown", name)
        return False
    if len(head) < 8 * layout.WORD_COUNT:
        return _older_than_leftover(info.st_mtime)
    # A whole segment of another kind (for example a table that another part of the
    # application keeps beside the rings) may belong to a live process.
    logger.info("kept segment %s: it is not a ring or a doorbell, so its owner is unknown", name)
    return False


def _owner(head: bytes) -> tuple[int, int] | None:
    # Returns the owner's pid and start time of a ring of this layout version or of a
    # doorbell, and None for anything else.
    if len(head) < 8 * layout.WORD_COUNT:
        return None
    words = np.frombuffer(head, dtype=np.uint64)
    magic = int(words[0])
    if magic == layout.MAGIC and int(words[1]) == layout.VERSION:
        return int(words[layout.OWNER_PID]), int(words[layout.OWNER_START])
    if magic == DOORBELL_MAGIC:
        return int(words[DOORBELL_OWNER_PID]), int(words[DOORBELL_OWNER_START])
    return None


def _older_than_leftover(modified: float) -> bool:
    return time.time() - modified > LEFTOVER_SECONDS
