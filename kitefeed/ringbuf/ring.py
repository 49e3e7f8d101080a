"""A ring segment mapped into this process: create, attach, close and unlink it."""

from __future__ import annotations

import logging
import mmap
import os
import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import InvalidRequestError, RingError
from . import layout, segment

if TYPE_CHECKING:
    from .reader import RingReader
    from .writer import RingWriter

__all__ = ["Ring"]

logger = logging.getLogger(__name__)

MAX_CAPACITY = 1 << 40
"""Largest accepted capacity in records, far above any real ring; it keeps sizes sane."""


class Ring:
    """A shared-memory ring of fixed-size numpy records, mapped into this process.

    Make one with :meth:`create` (the owner) or :meth:`attach`, then take a
    :meth:`writer` or :meth:`reader` from it. The owner calls :meth:`mark_closed` when
    the feed stops, :meth:`close`, and :meth:`unlink` when no process needs the ring any
    more. Leaving a ``with`` block does all three for the owner, and only :meth:`close`
    for a ring that was attached.
    """

    def __init__(
        self, name: str, fd: int, mapping: mmap.mmap, fields: layout.HeaderFields, *, owner: bool, writable: bool
    ) -> None:
        # Private: use create() or attach().
        self._name = name
        self._fd = fd
        self._mapping: mmap.mmap | None = mapping
        self._fields = fields
        self._owner = owner
        self._writable = writable
        self._clients: weakref.WeakSet[RingReader | RingWriter] = weakref.WeakSet()

        # Cursors and flags are 8-byte aligned uint64 words. NumPy stores and loads a
        # single aligned element with one instruction, which is atomic on x86-64 and aarch64.
        self._words = layout.header_words(mapping)

        # Readers get a read-only view even when this process maps the ring read-write.
        records = np.frombuffer(mapping, dtype=fields.dtype, count=fields.capacity, offset=fields.header_size)
        self._records = records
        self._records_read_only = records.view()
        self._records_read_only.flags.writeable = False

    # ----------------------------------------------------------------- construction

    @classmethod
    def create(cls, name: str, dtype: np.dtype[Any] | type | str, capacity: int, *, user: bytes = b"") -> Ring:
        """Create the ring ``name`` for ``capacity`` records of ``dtype`` and map it read-write.

        ``capacity`` must be a power of two. ``user`` fills the user area (at most
        :data:`~kitefeed.ringbuf.layout.USER_SIZE` bytes). The calling process owns the
        ring and should :meth:`unlink` it when done. Raises InvalidRequestError for a bad
        argument and RingError when the segment exists already or cannot be created.
        """
        segment.validate_name(name)
        dtype = np.dtype(dtype)
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise InvalidRequestError(f"invalid capacity {capacity!r}: expected an int")
        if capacity <= 0 or capacity & (capacity - 1) or capacity > MAX_CAPACITY:
            raise InvalidRequestError(
                f"invalid capacity {capacity}: expected a power of two from 1 to {MAX_CAPACITY}, "
                f"for example {1 << max(capacity - 1, 1).bit_length()}"
            )
        if not isinstance(user, bytes):
            raise InvalidRequestError(f"invalid user data {user!r}: expected bytes")

        dtype_text = layout.encode_dtype(dtype)
        fields = layout.HeaderFields(
            header_size=layout.header_size(),
            capacity=capacity,
            record_size=dtype.itemsize,
            created_ns=time.time_ns(),
            dtype=dtype,
            user=user,
        )

        layout.check_header_room(fields, dtype_text)

        def initialize(mapping: mmap.mmap) -> None:
            layout.write_header(mapping, fields, dtype_text, os.getpid())

        fd = segment.create_segment(name, fields.segment_size, initialize)
        mapping = _map(fd, fields.segment_size, writable=True)
        logger.info("created ring %s: %d records of %d bytes", name, capacity, dtype.itemsize)
        return cls(name, fd, mapping, fields, owner=True, writable=True)

    @classmethod
    def attach(cls, name: str, *, writable: bool = False) -> Ring:
        """Map the existing ring ``name``, read-only unless ``writable``.

        Raises RingError when the segment does not exist, and RingLayoutError when it is
        not a ring of this layout version.
        """
        fd = segment.open_segment(name, writable=writable)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise RingError(f"segment {name!r} is empty: it is not a ring")
            mapping = _map(fd, size, writable=writable)
            try:
                fields = layout.read_header(mapping, name)
            except BaseException:
                mapping.close()
                raise
        except BaseException:
            os.close(fd)
            raise
        return cls(name, fd, mapping, fields, owner=False, writable=writable)

    # ----------------------------------------------------------------- properties

    @property
    def name(self) -> str:
        """Segment name, the file name under /dev/shm."""
        return self._name

    @property
    def dtype(self) -> np.dtype[Any]:
        """Record dtype."""
        return self._fields.dtype

    @property
    def capacity(self) -> int:
        """Number of record slots, a power of two."""
        return self._fields.capacity

    @property
    def record_size(self) -> int:
        """Size of one record in bytes."""
        return self._fields.record_size

    @property
    def nbytes(self) -> int:
        """Size of the segment in bytes, header included."""
        return self._fields.segment_size

    @property
    def created_ns(self) -> int:
        """Creation time in nanoseconds since the Unix epoch."""
        return self._fields.created_ns

    @property
    def writable(self) -> bool:
        """Whether this process maps the ring read-write and so can take a writer."""
        return self._writable

    @property
    def owner(self) -> bool:
        """Whether this process created the ring."""
        return self._owner

    @property
    def closed(self) -> bool:
        """Whether the owner marked the feed as stopped: no more records will come."""
        return bool(self._live_words()[layout.CLOSED])

    @property
    def writer_pid(self) -> int:
        """Process id of the last process that took a writer, or of the creator before that."""
        return int(self._live_words()[layout.WRITER_PID])

    @property
    def liveness_ns(self) -> int:
        """CLOCK_MONOTONIC time in ns of the writer's last publish or touch, 0 before the first.

        Compare it with :func:`time.monotonic_ns`, which reads the same clock in every
        process on the host.
        """
        return int(self._live_words()[layout.LIVENESS_NS])

    @property
    def published(self) -> int:
        """Number of records published since creation."""
        return int(self._live_words()[layout.PUBLISHED])

    @property
    def user(self) -> bytes:
        """Contents of the user area."""
        return layout.get_user(self._live_mapping())

    def set_user(self, data: bytes) -> None:
        """Replace the user area's contents; set it before readers attach.

        Raises InvalidRequestError when ``data`` is longer than the area, and RingError
        when the ring is mapped read-only.
        """
        self._require_writable("set the user area")
        layout.set_user(self._live_mapping(), data)

    # ----------------------------------------------------------------- writer and readers

    def writer(self) -> RingWriter:
        """Return the writer of this ring. Only one process may hold a writer at a time."""
        from .writer import RingWriter

        self._require_writable("take a writer")
        return RingWriter(self)

    def reader(self, start: Literal["oldest", "newest"] = "oldest") -> RingReader:
        """Return a new reader that starts at the oldest intact record or at the newest cursor."""
        from .reader import RingReader

        self._live_mapping()
        return RingReader(self, start=start)

    # ----------------------------------------------------------------- life cycle

    def mark_closed(self) -> None:
        """Set the closed flag, telling readers that no more records will come."""
        self._require_writable("mark it closed")
        self._live_words()[layout.CLOSED] = 1

    def close(self) -> None:
        """Release the mapping and the file descriptor. Calling it again does nothing.

        Arrays returned by readers keep their memory mapped: the mapping is released
        when the last of them is garbage collected.
        """
        mapping = self._mapping
        if mapping is None:
            return

        self._mapping = None
        for client in list(self._clients):
            client._release()
        del self._words, self._records, self._records_read_only
        try:
            mapping.close()
        except BufferError:
            # NumPy views handed out by readers still export the buffer. Dropping our
            # reference leaves the mmap object alive until they are gone, and its
            # deallocation unmaps it then.
            logger.debug("ring %s closed with live views; unmapping when they are freed", self._name)
        os.close(self._fd)

    def unlink(self) -> None:
        """Remove the segment name from /dev/shm; mapped processes keep their mapping."""
        if segment.unlink_segment(self._name):
            logger.info("unlinked ring %s", self._name)

    def __enter__(self) -> Ring:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._owner and self._mapping is not None:
            self.mark_closed()
        self.close()
        if self._owner:
            self.unlink()

    def __repr__(self) -> str:
        state = "closed" if self._mapping is None else f"published={self.published}"
        return f"<Ring {self._name!r} dtype={self.dtype} capacity={self.capacity} {state}>"

    # ----------------------------------------------------------------- internals

    def _register(self, client: RingReader | RingWriter) -> None:
        # Ring.close() releases the client's views before unmapping.
        self._clients.add(client)

    def _live_mapping(self) -> mmap.mmap:
        if self._mapping is None:
            raise RingError(f"ring {self._name!r} is closed in this process: attach it again to use it")
        return self._mapping

    def _live_words(self) -> np.ndarray[Any, np.dtype[np.uint64]]:
        self._live_mapping()
        return self._words

    def _require_writable(self, action: str) -> None:
        self._live_mapping()
        if not self._writable:
            raise RingError(
                f"cannot {action} on ring {self._name!r}: it is mapped read-only; "
                "attach it with writable=True"
            )


def _map(fd: int, size: int, *, writable: bool) -> mmap.mmap:
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    return mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=prot)
