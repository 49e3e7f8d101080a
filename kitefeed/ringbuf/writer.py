"""The single writer of a ring: copies batches of records in, or lends slots to fill, and publishes them."""

from __future__ import annotations

import fcntl
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidRequestError, RingError
from . import _atomics, layout
from .liveness import self_identity

if TYPE_CHECKING:
    from .ring import Ring

__all__ = ["RingWriter"]

logger = logging.getLogger(__name__)


class RingWriter:
    """The one writer of a ring, made by :meth:`Ring.writer`.

    It takes an exclusive ``flock`` on the segment while open, so a second writer, in
    this or another process, is rejected. The kernel drops the lock when the process
    dies. Taking a writer records this process as the ring's writer and increments
    the writer generation, which lets readers count writer restarts.
    """

    def __init__(self, ring: Ring) -> None:
        # Private: use Ring.writer().
        self._ring = ring
        self._fd = ring._fd
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RingError(
                f"ring {ring.name!r} already has a writer (pid {ring.writer_pid}): "
                "close that writer first"
            ) from exc

        words = ring._words
        claimed = int(words[layout.CLAIMED])
        published = int(words[layout.PUBLISHED])
        if claimed != published:
            # A writer died between claiming and publishing. The slots it was filling
            # hold a mix of old and new records, and nothing in the header can mark them,
            # so going on would hand readers damaged records.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            raise RingError(
                f"ring {ring.name!r} has an unfinished publish (claimed {claimed}, published "
                f"{published}) from a writer that died: create a new ring"
            )

        self._words: np.ndarray[Any, np.dtype[np.uint64]] | None = words
        self._records: np.ndarray[Any, Any] | None = ring._records
        self._accepted_dtype = ring.dtype
        self._itemsize = ring.dtype.itemsize
        self._data_address = ring._records.ctypes.data
        self._area_bytes = ring.capacity * self._itemsize
        self._dtype = ring.dtype
        self._capacity = ring.capacity
        self._mask = ring.capacity - 1
        self._cursor = published
        self._reserved = 0

        self._claimed_address = ring._claimed_address
        self._published_address = ring._published_address
        self._liveness_address = ring._liveness_address
        self._wait_address = ring._wait_address
        self._wait_words: np.ndarray[Any, np.dtype[np.uint64]] | None = ring._wait_words

        pid, start_time = self_identity()
        words[layout.WRITER_PID] = pid
        words[layout.WRITER_START] = start_time
        words[layout.WRITER_GENERATION] += 1
        words[layout.LIVENESS_NS] = time.monotonic_ns()
        ring._register(self)
        logger.debug("writer of ring %s opened at cursor %d", ring.name, published)

    @property
    def cursor(self) -> int:
        """Number of records published so far, the position of the next record."""
        return self._cursor

    def publish(self, records: np.ndarray[Any, Any]) -> int:
        """Copy ``records`` into the ring as one batch and return the new published cursor.

        ``records`` is a 1-D array of the ring's dtype; it is copied, so the caller may
        reuse it. When it contains more records than the ring's capacity, only the last
        ``capacity`` are stored. The cursor still advances by ``len(records)``, so readers
        count the others as lost. Publishing makes no system call unless a reader is
        blocked on the ring's wait area, and then exactly one FUTEX_WAKE.
        """
        # The local references keep the mapping alive during the C calls.
        words, data, wait_words = self._words, self._records, self._wait_words
        if words is None or data is None:
            raise RingError(f"writer of ring {self._ring.name!r} is closed: take a new writer")
        if not isinstance(records, np.ndarray):
            raise InvalidRequestError(
                f"invalid records: expected a 1-D array of dtype {self._dtype}, found {type(records).__name__}"
            )
        # Comparing two distinct structured dtypes walks every field (about 2 us for the
        # tick dtype), so the last dtype object found equal is remembered.
        if records.dtype is not self._accepted_dtype or records.ndim != 1:
            if records.dtype != self._dtype or records.ndim != 1:
                raise InvalidRequestError(
                    f"invalid records: expected a 1-D array of dtype {self._dtype}, "
                    f"found {records.ndim}-D of dtype {records.dtype}"
                )
            self._accepted_dtype = records.dtype

        if self._reserved:
            raise InvalidRequestError(
                f"invalid publish: {self._reserved} records are still reserved; commit them first"
            )

        count = len(records)
        if count == 0:
            return self._cursor
        if not records.flags.c_contiguous:
            records = np.ascontiguousarray(records)
        end = self._cursor + count
        if count > self._capacity:
            records = records[count - self._capacity :]
        start = end - len(records)

        # Order of the three steps, relied on by readers:
        # 1. `claimed` moves first, followed by a full fence. A reader that re-checks
        #    `claimed` after reading records (RingReader.intact) detects the overwrite.
        # 2. The copy fills the slots (one copy, or two at the wrap-around).
        # 3. `published` moves last with a release store. A reader loads it with
        #    acquire ordering before reading records, so it never sees a cursor ahead
        #    of the records it covers, on aarch64 as on x86-64.
        _atomics.claim(self._claimed_address, end)

        # One memcpy, or two at the wrap-around, in C: numpy copies a structured dtype
        # field by field (about 6 us for one 272-byte tick record with numpy 2.4).
        _atomics.copy_in(self._data_address, self._area_bytes, (start & self._mask) * self._itemsize, records)

        _atomics.publish(self._published_address, end, self._liveness_address, self._wait_address)
        self._cursor = end
        return end

    def reserve(self, count: int) -> np.ndarray[Any, Any] | None:
        """Claim the next ``count`` slots and return a writable view of them, or None.

        The view is a 1-D array of ``count`` records of the ring's dtype in shared
        memory, holding whatever the slots held before. Fill its first records and call
        :meth:`commit` before the next reserve or publish. Until then readers see none
        of them, and readers that lag by almost a full lap count the records they held
        as lost, as during a publish. The view stays writable after the commit, but
        writing to it then damages records that readers may be reading.

        Returns None, without claiming anything, when the slots would run past the
        ring's end. Then decode into a temporary array and :meth:`publish` it, which
        copies in two parts.
        """
        records = self._records
        if records is None:
            raise RingError(f"writer of ring {self._ring.name!r} is closed: take a new writer")
        if self._reserved:
            raise InvalidRequestError(
                f"invalid reserve: {self._reserved} records are still reserved; commit them first"
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= self._capacity:
            raise InvalidRequestError(
                f"invalid reserve count {count!r}: expected an integer from 1 to the capacity {self._capacity}"
            )
        start = self._cursor & self._mask
        if start + count > self._capacity:
            return None

        # The claim and its full fence come before the caller's first store into the
        # slots, for the reason given in publish() (step 1).
        _atomics.claim(self._claimed_address, self._cursor + count)
        self._reserved = count
        return records[start : start + count]

    def commit(self, count: int) -> int:
        """Publish the first ``count`` records of the last reservation; return the new cursor.

        ``count`` may be below the reserved count, 0 included. The slots after the first
        ``count`` go back to the ring and the claimed cursor moves back with them, so
        readers count losses as if only ``count`` records had been claimed. That is
        only correct when the caller left those slots unwritten.
        """
        reserved = self._reserved
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= reserved:
            raise InvalidRequestError(
                f"invalid commit count {count!r}: expected an integer from 0 to the {reserved} reserved records"
            )
        # The local reference keeps the mapping alive during the C calls.
        words = self._words
        if words is None:
            raise RingError(f"writer of ring {self._ring.name!r} is closed: take a new writer")
        self._reserved = 0

        # Order of the steps, the same as publish() relies on:
        # 1. reserve() moved `claimed` to the end of the reservation, with a full
        #    fence, before the caller wrote any slot.
        # 2. When fewer records are committed, `claimed` moves back to the end of
        #    the committed ones. The unused slots still hold their old records, so no
        #    reader that re-checks `claimed` afterwards can have read a torn one.
        # 3. `published` moves last with a release store, which orders the caller's
        #    stores into the slots before it for a reader's acquire load.
        end = self._cursor + count
        if count < reserved:
            _atomics.claim(self._claimed_address, end)
        if count:
            _atomics.publish(self._published_address, end, self._liveness_address, self._wait_address)
        self._cursor = end
        del words
        return end

    def touch(self) -> None:
        """Update the liveness time without publishing, to show that the writer is alive."""
        if self._words is None:
            raise RingError(f"writer of ring {self._ring.name!r} is closed: take a new writer")
        self._words[layout.LIVENESS_NS] = time.monotonic_ns()

    def close(self) -> None:
        """Release the writer lock; the ring stays mapped. Calling it again does nothing."""
        if self._words is None:
            return
        self._release()
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _release(self) -> None:
        # Drops the views into the mapping so that Ring.close() can unmap it.
        self._words = None
        self._records = None
        self._wait_words = None

    def __enter__(self) -> RingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RingWriter {self._ring.name!r} cursor={self._cursor}>"
