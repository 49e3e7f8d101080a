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
from . import _atomics, layout, segment
from .doorbell import Doorbell
from .liveness import process_alive, self_identity
from .waiting import DEFAULT_SPIN_US, Wait

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
        self,
        name: str,
        fd: int,
        mapping: mmap.mmap,
        header_mapping: mmap.mmap,
        fields: layout.HeaderFields,
        doorbell: Doorbell | None,
        *,
        owner: bool,
        writable: bool,
    ) -> None:
        # Private: use create() or attach(). `header_mapping` is `mapping` itself for a
        # writable ring, and a separate read-write mapping of the header page otherwise.
        self._name = name
        self._fd = fd
        self._mapping: mmap.mmap | None = mapping
        self._header_mapping = header_mapping
        self._fields = fields
        self._doorbell = doorbell
        self._owner = owner
        self._writable = writable
        self._clients: weakref.WeakSet[RingReader | RingWriter] = weakref.WeakSet()

        # Cursors and flags are 8-byte aligned uint64 words. Publishing and reading
        # load and store them through the C extension's atomics, which order them
        # against the record copies on every CPU.
        self._words = layout.header_words(header_mapping)
        self._wait_words = self._words[layout.WAIT_AREA :] if doorbell is None else doorbell._wait_words

        # Raw addresses for the C extension. Each caller keeps `_words` or `_wait_words`
        # referenced during a call, which keeps the mapping alive (see close()).
        base = self._words.ctypes.data
        self._claimed_address = base + 8 * layout.CLAIMED
        self._published_address = base + 8 * layout.PUBLISHED
        self._liveness_address = base + 8 * layout.LIVENESS_NS
        self._closed_address = base + 8 * layout.CLOSED
        self._wait_address = self._wait_words.ctypes.data

        # Readers get a read-only view even when this process maps the ring read-write.
        records = np.frombuffer(mapping, dtype=fields.dtype, count=fields.capacity, offset=fields.header_size)
        self._records = records
        self._records_read_only = records.view()
        self._records_read_only.flags.writeable = False

    # ----------------------------------------------------------------- construction

    @classmethod
    def create(
        cls,
        name: str,
        dtype: np.dtype[Any] | type | str,
        capacity: int,
        *,
        user: bytes = b"",
        doorbell: str | None = None,
    ) -> Ring:
        """Create the ring ``name`` for ``capacity`` records of ``dtype`` and map it read-write.

        ``capacity`` must be a power of two. ``user`` fills the user area (at most
        :data:`~kitefeed.ringbuf.layout.USER_SIZE` bytes). ``doorbell`` names an existing
        :class:`Doorbell` that the ring's writer will notify instead of the ring's own
        wait area, so that a group reader over rings sharing it can block. The calling
        process owns the ring and should :meth:`unlink` it when done. Raises
        InvalidRequestError for a bad argument and RingError when the segment exists
        already or cannot be created, or when the doorbell does not exist.
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
        if doorbell is not None:
            segment.validate_name(doorbell)

        dtype_text = layout.encode_dtype(dtype)
        fields = layout.HeaderFields(
            header_size=layout.header_size(),
            capacity=capacity,
            record_size=dtype.itemsize,
            created_ns=time.time_ns(),
            dtype=dtype,
            user=user,
            doorbell=doorbell,
        )
        layout.check_header_room(fields, dtype_text)
        pid, start_time = self_identity()

        def initialize(mapping: mmap.mmap) -> None:
            layout.write_header(mapping, fields, dtype_text, pid, start_time)

        bell = None if doorbell is None else Doorbell.attach(doorbell)
        try:
            fd = segment.create_segment(name, fields.segment_size, initialize)
        except BaseException:
            if bell is not None:
                bell.close()
            raise
        mapping = _map(fd, fields.segment_size, writable=True)
        logger.info("created ring %s: %d records of %d bytes", name, capacity, dtype.itemsize)
        return cls(name, fd, mapping, mapping, fields, bell, owner=True, writable=True)

    @classmethod
    def attach(cls, name: str, *, writable: bool = False) -> Ring:
        """Map the existing ring ``name``, its records read-only unless ``writable``.

        The header page is always mapped read-write, because a blocking reader
        registers itself as a sleeper there; the records stay read-only for readers.
        The ring's doorbell, if it has one, is attached too. Raises RingError when the
        segment or its doorbell does not exist, and RingLayoutError when it is not a
        ring of this layout version.
        """
        fd = segment.open_segment(name, writable=True)
        mappings: list[mmap.mmap] = []
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise RingError(f"segment {name!r} is empty: it is not a ring")
            mapping = _map(fd, size, writable=writable)
            mappings.append(mapping)
            fields = layout.read_header(mapping, name)

            header_mapping = mapping
            if not writable:
                header_mapping = _map(fd, fields.header_size, writable=True)
                mappings.append(header_mapping)
            bell = None if fields.doorbell is None else Doorbell.attach(fields.doorbell)
        except BaseException:
            for opened in mappings:
                opened.close()
            os.close(fd)
            raise
        return cls(name, fd, mapping, header_mapping, fields, bell, owner=False, writable=writable)

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
    def doorbell(self) -> str | None:
        """Name of the doorbell the ring's writer notifies, or None when it uses its own wait area."""
        return self._fields.doorbell

    @property
    def writer_pid(self) -> int:
        """Process id of the last process that took a writer, or of the creator before that."""
        return int(self._live_words()[layout.WRITER_PID])

    @property
    def writer_alive(self) -> bool:
        """Whether the process of :attr:`writer_pid` is running (its id was not reused)."""
        words = self._live_words()
        return process_alive(int(words[layout.WRITER_PID]), int(words[layout.WRITER_START]))

    @property
    def writer_generation(self) -> int:
        """Number of writers taken since creation; it grows by one each time a writer attaches."""
        return int(self._live_words()[layout.WRITER_GENERATION])

    @property
    def owner_pid(self) -> int:
        """Process id of the creator, which marks the ring closed and unlinks it."""
        return int(self._live_words()[layout.OWNER_PID])

    @property
    def owner_alive(self) -> bool:
        """Whether the creating process is running (its id was not reused)."""
        words = self._live_words()
        return process_alive(int(words[layout.OWNER_PID]), int(words[layout.OWNER_START]))

    @property
    def sleepers(self) -> int:
        """Readers blocked on this ring's wait area (the doorbell's, if it has one), in any process."""
        self._live_words()
        return int(self._wait_words[1])

    @property
    def wakes(self) -> int:
        """FUTEX_WAKE calls issued on this ring's wait area (the doorbell's, if it has one).

        A writer issues one per publish while a reader is blocked and none otherwise.
        With a doorbell the count includes wake-ups by the other rings' writers.
        """
        self._live_words()
        return int(self._wait_words[2])

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

    def reader(
        self,
        start: Literal["oldest", "newest"] = "oldest",
        wait: Wait | str = Wait.SPIN,
        spin_us: float = DEFAULT_SPIN_US,
    ) -> RingReader:
        """Return a new reader that starts at the oldest intact record or at the newest cursor.

        ``wait`` chooses how :meth:`RingReader.read` waits (see :class:`Wait`), and
        ``spin_us`` how long :attr:`Wait.SPIN` spins before it blocks, in microseconds.
        """
        from .reader import RingReader

        self._live_mapping()
        return RingReader(self, start=start, wait=wait, spin_us=spin_us)

    # ----------------------------------------------------------------- life cycle

    def mark_closed(self) -> None:
        """Set the closed flag, telling readers that no more records will come."""
        self._require_writable("mark it closed")
        words = self._live_words()
        _atomics.store_release_u64(self._closed_address, 1)

        # Blocked readers wake up, find the flag set and return.
        _atomics.notify(self._wait_address)
        del words

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
        del self._words, self._wait_words, self._records, self._records_read_only

        mappings = [mapping] if self._header_mapping is mapping else [mapping, self._header_mapping]
        for segment_mapping in mappings:
            try:
                segment_mapping.close()
            except BufferError:
                # NumPy views handed out by readers, or held by a read blocked in
                # another thread, still export the buffer. Dropping our reference
                # leaves the mmap object alive until they are gone, and its
                # deallocation unmaps it then.
                logger.debug("ring %s closed with live views; unmapping when they are freed", self._name)
        if self._doorbell is not None:
            self._doorbell.close()
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
