"""Shared-memory segments in /dev/shm: create, open, list and remove them by name.

A segment is a plain file on the tmpfs at /dev/shm, which is what ``shm_open`` uses on
Linux. This module opens those files directly instead of using
:mod:`multiprocessing.shared_memory`, because on CPython 3.11 and 3.12 its resource
tracker unlinks a segment when any process that merely attached to it exits.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from ..errors import InvalidRequestError, RingError

__all__ = [
    "MAX_NAME_LENGTH",
    "SHM_DIR",
    "create_segment",
    "list_segments",
    "open_segment",
    "remove_segments",
    "unlink_segment",
    "validate_name",
]

logger = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
"""Directory of POSIX shared-memory objects on Linux."""

MAX_NAME_LENGTH = 200
"""Maximum length of a segment name, leaving room below the 255-byte file-name limit."""

_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def validate_name(name: str) -> str:
    """Raise InvalidRequestError unless ``name`` is a usable segment name, else return it.

    A name has 1 to :data:`MAX_NAME_LENGTH` characters out of letters, digits, ``_``, ``.``
    and ``-``, and does not start with ``.`` or ``-``. It is a file name in /dev/shm, so
    it never contains ``/``.
    """
    if not isinstance(name, str):
        raise InvalidRequestError(f"invalid segment name {name!r}: expected a str")
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        raise InvalidRequestError(
            f"invalid segment name {name!r}: expected 1 to {MAX_NAME_LENGTH} characters, "
            f"found {len(name)}"
        )
    if _NAME_PATTERN.fullmatch(name) is None:
        raise InvalidRequestError(
            f"invalid segment name {name!r}: use only letters, digits, '_', '.' and '-', "
            "and start with a letter, digit or '_'"
        )
    return name


def create_segment(name: str, size: int, initialize: Callable[[mmap.mmap], None]) -> int:
    """Create the segment ``name`` of ``size`` bytes, fill it, and return a read-write fd.

    The file is created under a temporary name with mode 0600 and ``O_EXCL``. It is
    reserved in full with ``posix_fallocate``, so a full /dev/shm fails here with ENOSPC
    instead of raising SIGBUS on a later write. ``initialize`` fills it through a
    writable mmap. Only then is it hard-linked to its final name, so a process that
    opens ``name`` never sees a half-written header. Raises RingError if ``name`` already exists.
    """
    validate_name(name)
    temporary = SHM_DIR / f"{name}.init-{os.getpid()}-{secrets.token_hex(4)}"
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temporary, flags, 0o600)
    except OSError as exc:
        raise RingError(f"cannot create shared-memory segment {name!r} in {SHM_DIR}: {exc}") from exc

    try:
        os.posix_fallocate(fd, 0, size)
        with mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE) as mapping:
            initialize(mapping)
        os.link(temporary, SHM_DIR / name)
    except FileExistsError as exc:
        os.close(fd)
        raise RingError(
            f"shared-memory segment {name!r} already exists: choose another name, or remove "
            "the leftover with remove_segments() if its writer is gone"
        ) from exc
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise RingError(f"cannot create shared-memory segment {name!r} of {size} bytes: {exc}") from exc
        raise
    finally:
        temporary.unlink(missing_ok=True)

    logger.debug("created shared-memory segment %s of %d bytes", name, size)
    return fd


def open_segment(name: str, *, writable: bool) -> int:
    """Open the existing segment ``name`` and return its fd, read-only unless ``writable``.

    Raises RingError naming the segment when it does not exist or cannot be opened.
    """
    validate_name(name)
    flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(SHM_DIR / name, flags)
    except FileNotFoundError as exc:
        raise RingError(
            f"shared-memory segment {name!r} not found in {SHM_DIR}: start its writer first, "
            "or check the name"
        ) from exc
    except OSError as exc:
        raise RingError(f"cannot open shared-memory segment {name!r}: {exc}") from exc


def unlink_segment(name: str) -> bool:
    """Remove the segment ``name`` from /dev/shm and return whether it existed.

    Processes that have it mapped keep their mapping; the memory is freed when the last
    of them unmaps it.
    """
    validate_name(name)
    try:
        (SHM_DIR / name).unlink()
    except FileNotFoundError:
        return False
    logger.debug("unlinked shared-memory segment %s", name)
    return True


def list_segments(prefix: str) -> list[str]:
    """Return the sorted names of the segments in /dev/shm whose names start with ``prefix``.

    The list includes any file with that prefix, also one that is not a ring, and the
    temporary files of a creation that was interrupted.
    """
    validate_name(prefix)
    return sorted(entry.name for entry in os.scandir(SHM_DIR) if entry.name.startswith(prefix))


def remove_segments(prefix: str) -> list[str]:
    """Unlink every segment whose name starts with ``prefix`` and return the names removed.

    Use it to clean up after a process that was killed before it could unlink its rings.
    Choose a prefix that only your application uses: every matching file is removed.
    """
    removed = []
    for name in list_segments(prefix):
        try:
            (SHM_DIR / name).unlink()
        except FileNotFoundError:
            continue
        removed.append(name)

    if removed:
        logger.info("removed %d shared-memory segments with prefix %s", len(removed), prefix)
    return removed

