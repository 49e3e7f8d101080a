"""A doorbell: one wait area in its own segment, shared by the writers of several rings.

Readers block on a futex word in a wait area, and a writer that publishes wakes them
only when one is registered as a sleeper. Every ring has a wait area in its header.
Rings created with ``doorbell=name`` use the doorbell's wait area instead, so a
:class:`~kitefeed.ringbuf.GroupReader` over them can block on a single futex and wake
up when any of them publishes.

A doorbell segment is one page: a few header words, then the wait area at byte 64.
"""

from __future__ import annotations

import logging
import mmap
import os
import time
from types import TracebackType
from typing import Any

import numpy as np

from ..errors import RingError, RingLayoutError
from . import _atomics, segment
from .liveness import process_alive, self_identity

__all__ = ["DOORBELL_MAGIC", "Doorbell"]

logger = logging.getLogger(__name__)

DOORBELL_MAGIC = int.from_bytes(b"kfbell\r\n", "little")
"""First word of a doorbell segment."""

DOORBELL_VERSION = 1
"""Layout version of doorbell segments; other versions are rejected."""

# Word indexes.
_MAGIC, _VERSION, OWNER_PID, OWNER_START, _CREATED_NS = range(5)
WAIT_AREA = 8
"""Word index of the wait area: futex word, sleeper count, wake-ups issued."""

WAIT_WORDS = 3
"""Length of a wait area in 64-bit words."""

SLEEPERS = 1
WAKES = 2
"""Indexes of the sleeper count and of the wake-up count within a wait area."""


class Doorbell:
    """A wait area in its own one-page segment, mapped read-write into this process.

    Make one with :meth:`create` before creating the rings that use it, and pass its
    name as ``Ring.create(..., doorbell=name)``. Rings attach it by that name. The
    owner calls :meth:`unlink` when the rings are gone. Leaving a ``with`` block
    closes it, and unlinks it too for the owner.
    """

    def __init__(self, name: str, fd: int, mapping: mmap.mmap, *, owner: bool) -> None:
        # Private: use create() or attach().
        self._name = name
        self._fd = fd
        self._mapping: mmap.mmap | None = mapping
        self._owner = owner
        self._words = np.frombuffer(mapping, dtype=np.uint64, count=WAIT_AREA + WAIT_WORDS)
        self._wait_words = self._words[WAIT_AREA:]

    @classmethod
    def create(cls, name: str) -> Doorbell:
        """Create the doorbell ``name`` (mode 0600) and map it; this process owns it.

        Raises RingError when the segment exists already or cannot be created, and
        InvalidRequestError for an invalid name.
        """
        pid, start_time = self_identity()

        def initialize(mapping: mmap.mmap) -> None:
            words = np.frombuffer(mapping, dtype=np.uint64, count=WAIT_AREA)
            words[_VERSION] = DOORBELL_VERSION
            words[OWNER_PID] = pid
            words[OWNER_START] = start_time
            words[_CREATED_NS] = time.time_ns()
            words[_MAGIC] = DOORBELL_MAGIC
            del words

        fd = segment.create_segment(name, mmap.PAGESIZE, initialize)
        mapping = mmap.mmap(fd, mmap.PAGESIZE, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        logger.info("created doorbell %s", name)
        return cls(name, fd, mapping, owner=True)

    @classmethod
    def attach(cls, name: str) -> Doorbell:
        """Map the existing doorbell ``name`` read-write.

        Raises RingError when it does not exist and RingLayoutError when the segment is
        not a doorbell of this version.
        """
        fd = segment.open_segment(name, writable=True)
        try:
            size = os.fstat(fd).st_size
            if size < mmap.PAGESIZE:
                raise RingLayoutError(f"segment {name!r} is not a doorbell: it has {size} bytes, fewer than one page")
            mapping = mmap.mmap(fd, mmap.PAGESIZE, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            words = np.frombuffer(mapping, dtype=np.uint64, count=2)
            magic, version = int(words[_MAGIC]), int(words[_VERSION])
            del words
            if magic != DOORBELL_MAGIC or version != DOORBELL_VERSION:
                mapping.close()
                raise RingLayoutError(
                    f"segment {name!r} is not a doorbell of version {DOORBELL_VERSION}: "
                    f"magic {magic:#018x}, version {version}"
                )
        except BaseException:
            os.close(fd)
            raise
        return cls(name, fd, mapping, owner=False)

    @property
    def name(self) -> str:
        """Segment name, the file name under /dev/shm."""
        return self._name

    @property
    def owner(self) -> bool:
        """Whether this process created the doorbell."""
        return self._owner

    @property
    def owner_pid(self) -> int:
        """Process id of the creator."""
        return int(self._live_words()[OWNER_PID])

    @property
    def owner_alive(self) -> bool:
        """Whether the creating process is still running."""
        words = self._live_words()
        return process_alive(int(words[OWNER_PID]), int(words[OWNER_START]))

    @property
    def sleepers(self) -> int:
        """Number of readers currently blocked on this doorbell, in any process."""
        return int(self._live_words()[WAIT_AREA + SLEEPERS])

    @property
    def wakes(self) -> int:
        """Number of FUTEX_WAKE calls that writers issued on this doorbell since creation."""
        return int(self._live_words()[WAIT_AREA + WAKES])

    def notify(self) -> bool:
        """Wake every reader blocked on this doorbell; return whether one was blocked."""
        self._live_words()
        return bool(_atomics.notify(self._wait_words.ctypes.data))

    def close(self) -> None:
        """Release the mapping and the file descriptor. Calling it again does nothing.

        A blocked reader holds a view of the wait area, which keeps the memory mapped
        until that reader returns.
        """
        mapping = self._mapping
        if mapping is None:
            return
        self._mapping = None
        del self._words, self._wait_words
        try:
            mapping.close()
        except BufferError:
            logger.debug("doorbell %s closed with live views; unmapping when they are freed", self._name)
        os.close(self._fd)

    def unlink(self) -> None:
        """Remove the segment name from /dev/shm; mapped processes keep their mapping."""
        if segment.unlink_segment(self._name):
            logger.info("unlinked doorbell %s", self._name)

    def __enter__(self) -> Doorbell:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
        if self._owner:
            self.unlink()

    def __repr__(self) -> str:
        return f"<Doorbell {self._name!r}>"

    def _live_words(self) -> np.ndarray[Any, np.dtype[np.uint64]]:
        if self._mapping is None:
            raise RingError(f"doorbell {self._name!r} is closed in this process: attach it again to use it")
        return self._words
