"""The latest tick of every instrument of a feed, in shared memory that any process can query.

One process runs :meth:`LatestTable.follow`: a thread reads the feed's rings and stores
each instrument's newest record in a table segment. Any process on the host then calls
:meth:`LatestTable.attach` with the feed's name and looks records up by instrument
token, without reading the feed itself. The segment layout and the seqlock that makes
lookups safe during writes are described in :mod:`kitefeed.consume.table_layout`.

The segment is named ``kitefeed_latest-<feed>``, mode 0600. Its name deliberately does
not start with the rings' ``kitefeed-<feed>-`` prefix, so that a new
:class:`~kitefeed.Feed` of the same name does not take it for a live feed's segment.
``kitefeed cleanup`` removes tables whose owner died through :func:`remove_stale_tables`,
and :meth:`LatestTable.follow` removes the table of a dead owner by itself.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
import time
from types import TracebackType
from typing import Any

import msgspec
import numpy as np

from ..engine import open_reader
from ..engine.naming import validate_feed_name
from ..errors import FeedStateError, InvalidRequestError, KitefeedError, RingError
from ..parsers import TICK_DTYPE
from ..ringbuf import _atomics
from ..ringbuf.liveness import process_alive, self_identity
from ..ringbuf.segment import SHM_DIR, create_segment, list_segments, open_segment, unlink_segment
from . import table_layout as layout
from .frames import has_tick_fields

__all__ = ["DEFAULT_CAPACITY", "LatestStats", "LatestTable", "find_stale_tables", "remove_stale_tables", "table_name"]

logger = logging.getLogger(__name__)

TABLE_PREFIX = "kitefeed_latest-"
"""Start of every table segment's name."""

DEFAULT_CAPACITY = 1 << 15
"""Slots of a table: room for 24,576 instruments (75 % of the slots); 9.0 MiB of shared memory."""


def table_name(feed_name: str) -> str:
    """Return the segment name of the latest-tick table of ``feed_name``, e.g. ``kitefeed_latest-live``."""
    return f"{TABLE_PREFIX}{validate_feed_name(feed_name)}"


class LatestStats(msgspec.Struct, frozen=True):
    """Counters of a table, read from its shared header.

    ``instruments`` is the number of instruments with a record, ``updates`` the records
    written, ``dropped`` the records of new instruments that did not fit, and
    ``following`` whether the owner still follows the feed.
    """

    instruments: int
    capacity: int
    updates: int
    dropped: int
    following: bool


class LatestTable:
    """The newest :data:`~kitefeed.TICK_DTYPE` record of each instrument of one feed.

    Create one with :meth:`follow` (the owner: creates the segment and keeps it up to
    date) or :meth:`create` (the owner feeds it with :meth:`update` itself), and open one
    from any process with :meth:`attach`. Every lookup returns a copy, so results stay
    valid after later updates. Close it with :meth:`close` or ``with``; the owner's
    close removes the segment, and attached readers keep their mapping until they close.
    """

    def __init__(self, name: str, fd: int, *, owner: bool) -> None:
        self.name = name
        self.owner = owner
        try:
            size = os.fstat(fd).st_size
            protection = mmap.PROT_READ | (mmap.PROT_WRITE if owner else 0)
            self._mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=protection)
        finally:
            os.close(fd)

        words = np.frombuffer(self._mapping, dtype=np.uint64, count=layout.HEADER_WORDS)
        try:
            self.capacity = layout.check_header(words, name, size)
        except RingError:
            del words
            self._mapping.close()
            raise
        self._header = words
        self._slots = np.frombuffer(
            self._mapping, dtype=np.uint64, count=2 * self.capacity, offset=layout.HEADER_SIZE
        ).reshape(self.capacity, 2)
        self._records = np.frombuffer(
            self._mapping, dtype=TICK_DTYPE, count=self.capacity, offset=layout.HEADER_SIZE + 16 * self.capacity
        )

        # The owner's index of its slots: tokens sorted, with the slot of each, for np.searchsorted.
        self._known_tokens = np.empty(0, dtype=np.uint32)
        self._known_slots = np.empty(0, dtype=np.int64)
        self._closed = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.feed_name = name[len(TABLE_PREFIX) :]

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def create(cls, feed_name: str, *, capacity: int = DEFAULT_CAPACITY) -> LatestTable:
        """Create the empty table of ``feed_name``; the caller writes it with :meth:`update`.

        ``capacity`` is the number of slots, a power of two of at least 16; the table
        holds up to 75 % of it in instruments. A table of the same name left by a dead
        process is removed first. Raises :class:`FeedStateError` when a live process
        already owns the table.
        """
        name = table_name(feed_name)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 16 or capacity & (capacity - 1):
            raise InvalidRequestError(f"invalid capacity {capacity!r}: expected a power of two of at least 16")

        if _is_stale(name) and unlink_segment(name):
            logger.warning("removed latest-tick table %s left by a process that died", name)
        if (SHM_DIR / name).exists():
            raise FeedStateError(
                f"a live process already keeps the latest-tick table of feed {feed_name!r}; "
                "attach to it with LatestTable.attach(), or stop that process first"
            )

        pid, start_time = self_identity()

        def initialize(mapping: mmap.mmap) -> None:
            header = np.frombuffer(mapping, dtype=np.uint64, count=layout.HEADER_WORDS)
            header[layout.W_VERSION] = layout.VERSION
            header[layout.W_CAPACITY] = capacity
            header[layout.W_RECORD_SIZE] = TICK_DTYPE.itemsize
            header[layout.W_DTYPE_CHECK] = layout.DTYPE_CHECK
            header[layout.W_OWNER_PID] = pid
            header[layout.W_OWNER_START] = start_time
            header[layout.W_CREATED_NS] = time.time_ns()
            header[layout.W_MAGIC] = layout.MAGIC
            del header

        fd = create_segment(name, layout.segment_size(capacity), initialize)
        logger.info("created latest-tick table %s with %d slots", name, capacity)
        return cls(name, fd, owner=True)

    @classmethod
    def follow(
        cls, feed_name: str, *, capacity: int = DEFAULT_CAPACITY, start: str = "oldest"
    ) -> LatestTable:
        """Create the table of the running feed ``feed_name`` and start a thread that keeps it up to date.

        The thread reads every key's ring from the oldest record still there, or only
        new records with ``start="newest"``. It stops on :meth:`close`, or when the feed
        stops and every record has been read. The table then keeps its last records
        until closed. Raises :class:`RingError` when no such feed runs.
        """
        reader = open_reader(feed_name, start=start, wait="block")  # type: ignore[arg-type]
        try:
            table = cls.create(feed_name, capacity=capacity)
        except BaseException:
            reader.close()
            raise
        table._thread = threading.Thread(
            target=table._follow, args=(reader,), name=f"kitefeed-latest-{feed_name}", daemon=True
        )
        table._thread.start()
        return table

    @classmethod
    def attach(cls, feed_name: str) -> LatestTable:
        """Open the table of ``feed_name`` read-only, from any process on this host.

        Raises :class:`RingError` when no process keeps a table for that feed.
        """
        name = table_name(feed_name)
        try:
            fd = open_segment(name, writable=False)
        except RingError as exc:
            raise RingError(
                f"no latest-tick table of feed {feed_name!r} on this machine (segment {name!r} not found): "
                "start one with LatestTable.follow() in a process that runs or reads the feed"
            ) from exc
        return cls(name, fd, owner=False)

    # -- writing --------------------------------------------------------------------------

    def _follow(self, reader: Any) -> None:
        logger.info("latest-tick table %s follows feed %r", self.name, reader.feed_name)
        try:
            with reader:
                while not self._stopping.is_set():
                    batch = reader.read(0.1)
                    if len(batch):
                        self.update(batch)
                    elif reader.closed:
                        logger.info("latest-tick table %s: feed %r stopped", self.name, reader.feed_name)
                        break
        except KitefeedError as exc:
            logger.error("latest-tick table %s stopped following feed %r: %s", self.name, reader.feed_name, exc)
        finally:
            self._header[layout.W_CLOSED] = 1

    def update(self, batch: np.ndarray[Any, Any]) -> None:
        """Store the last record of each instrument in ``batch`` (a 1-D array of TICK_DTYPE).

        Only the owner writes, from one thread at a time. Records of new instruments
        beyond 75 % of the capacity are dropped and counted in ``stats().dropped``.
        """
        if not self.owner:
            raise FeedStateError(f"latest-tick table {self.name!r} is attached read-only; only its owner updates it")
        if not has_tick_fields(batch.dtype) or batch.ndim != 1:
            raise InvalidRequestError(
                f"invalid batch of dtype {batch.dtype} and shape {batch.shape}: expected a 1-D array of TICK_DTYPE"
            )
        if not len(batch):
            return

        # The last record of each token wins: np.unique on the reversed tokens finds last positions.
        tokens = batch["instrument_token"]
        unique, first_reversed = np.unique(tokens[::-1], return_index=True)
        last = len(tokens) - 1 - first_reversed
        slots, new_tokens = self._slots_of(unique)
        stored = slots >= 0
        if not stored.all():
            dropped = int((~stored).sum())
            self._header[layout.W_DROPPED] += np.uint64(dropped)
            logger.warning("latest-tick table %s is full: dropped records of %d new instruments", self.name, dropped)
        targets = slots[stored]
        records = batch[last[stored]]

        # Seqlock write of every target slot at once: odd, fence, records, fence, even.
        sequences = self._slots[:, layout.SEQUENCE]
        sequences[targets] += np.uint64(1)
        _atomics.fence_seq_cst()
        self._records[targets] = records
        _atomics.fence_seq_cst()
        sequences[targets] += np.uint64(1)

        if len(new_tokens):
            # Keys go in after the fence, so a reader that finds a key finds its whole record.
            _atomics.fence_seq_cst()
            self._slots[self._known_slots[np.searchsorted(self._known_tokens, new_tokens)], layout.KEY] = (
                new_tokens.astype(np.uint64) + np.uint64(1)
            )
            self._header[layout.W_USED] = len(self._known_tokens)
        self._header[layout.W_UPDATES] += np.uint64(len(targets))

    def _lookup(self, tokens: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Return, for sorted unique ``tokens``, whether each has a slot and its slot index (-1 if none)."""
        known = self._known_tokens
        if not len(known):
            return np.zeros(len(tokens), dtype=bool), np.full(len(tokens), -1, dtype=np.int64)
        positions = np.minimum(np.searchsorted(known, tokens), len(known) - 1)
        found = known[positions] == tokens
        return found, np.where(found, self._known_slots[positions], -1)

    def _slots_of(self, tokens: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Return the slot of each sorted unique token (-1 when the table is full) and the tokens given new slots."""
        found, _ = self._lookup(tokens)
        new_tokens = tokens[~found]
        if len(new_tokens):
            new_tokens = self._add(new_tokens)
        return self._lookup(tokens)[1], new_tokens

    def _add(self, tokens: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Give free slots to new ``tokens`` while the table is below its maximum load; return those added."""
        # New instruments are rare after the first batches, so probing in Python costs little overall.
        limit = int(self.capacity * layout.MAX_LOAD)
        room = max(0, limit - len(self._known_tokens))
        tokens = tokens[:room]
        taken = self._slots[:, layout.KEY] != 0
        added_slots: list[int] = []
        for index in layout.hash_slot(tokens, self.capacity).tolist():
            while taken[index]:
                index = (index + 1) & (self.capacity - 1)
            taken[index] = True
            added_slots.append(index)

        merged_tokens = np.concatenate([self._known_tokens, tokens.astype(np.uint32)])
        merged_slots = np.concatenate([self._known_slots, np.array(added_slots, dtype=np.int64)])
        order = np.argsort(merged_tokens, kind="stable")
        self._known_tokens = merged_tokens[order]
        self._known_slots = merged_slots[order]
        return tokens

    # -- reading --------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise FeedStateError(f"latest-tick table {self.name!r} is closed; attach to it again")

    def get(self, token: int) -> np.void | None:
        """Return a copy of the newest record of instrument ``token`` (a TICK_DTYPE scalar), or None."""
        self._require_open()
        index = layout.find_slot(self._slots, int(token), self.capacity)
        if index is None:
            return None
        return layout.read_slot(self._slots, self._records, index, self.name)[0]

    def last_price(self, token: int) -> float | None:
        """Return the last traded price of ``token`` in rupees, or None when the table has no record of it."""
        record = self.get(token)
        return None if record is None else float(record["last_price"])

    def last_update(self, token: int) -> np.datetime64 | None:
        """Return when the newest record of ``token`` was received (``recv_time``, UTC, datetime64[ns]), or None."""
        record = self.get(token)
        return None if record is None else record["recv_time"]

    def snapshot(self) -> np.ndarray[Any, Any]:
        """Return a copy of every instrument's newest record: a 1-D TICK_DTYPE array sorted by instrument_token.

        Each record is whole, but records of different instruments may come from
        different moments, since the writer keeps writing during the copy.
        """
        self._require_open()
        keys = self._slots[:, layout.KEY].copy()
        _atomics.fence_acquire()
        used = np.flatnonzero(keys)
        records = layout.read_slots(self._slots, self._records, used, self.name)
        return records[np.argsort(records["instrument_token"], kind="stable")]

    def __len__(self) -> int:
        return int(self._header[layout.W_USED])

    def __contains__(self, token: object) -> bool:
        return isinstance(token, (int, np.integer)) and layout.find_slot(self._slots, token, self.capacity) is not None

    def stats(self) -> LatestStats:
        """Return the table's counters from its shared header."""
        self._require_open()
        header = self._header
        return LatestStats(
            instruments=int(header[layout.W_USED]),
            capacity=self.capacity,
            updates=int(header[layout.W_UPDATES]),
            dropped=int(header[layout.W_DROPPED]),
            following=not int(header[layout.W_CLOSED]) and self._owner_alive(),
        )

    def _owner_alive(self) -> bool:
        return process_alive(int(self._header[layout.W_OWNER_PID]), int(self._header[layout.W_OWNER_START]))

    # -- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop following the feed, unmap the table and, for the owner, remove the segment.

        Safe to call more than once. Records returned earlier are copies and stay valid.
        """
        if self._closed:
            return
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._closed = True

        if self.owner:
            self._header[layout.W_CLOSED] = 1
            unlink_segment(self.name)
            logger.info("removed latest-tick table %s", self.name)
        # The views must go before the mapping, which refuses to close while they exist.
        del self._header, self._slots, self._records
        self._mapping.close()

    def __enter__(self) -> LatestTable:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        role = "owner" if self.owner else "attached"
        return f"<LatestTable {self.name!r} {role}, capacity {self.capacity}>"


def find_stale_tables(prefix: str = TABLE_PREFIX) -> list[str]:
    """Return the table segments whose names start with ``prefix`` and whose owner process has exited."""
    return [name for name in list_segments(prefix) if _is_stale(name)]


def remove_stale_tables(prefix: str = TABLE_PREFIX) -> list[str]:
    """Remove the table segments whose names start with ``prefix`` and whose owner process has exited.

    Returns the names removed. A file under the prefix that is not a table is left alone.
    """
    return [name for name in list_segments(prefix) if _is_stale(name) and unlink_segment(name)]


def _is_stale(name: str) -> bool:
    """Return whether ``name`` is a table segment whose owner process has exited."""
    try:
        fd = open_segment(name, writable=False)
    except RingError:
        return False
    try:
        head = os.pread(fd, 8 * layout.HEADER_WORDS, 0)
    finally:
        os.close(fd)
    if len(head) < 8 * layout.HEADER_WORDS:
        return False
    words = np.frombuffer(head, dtype=np.uint64)
    if int(words[layout.W_MAGIC]) != layout.MAGIC:
        return False
    return not process_alive(int(words[layout.W_OWNER_PID]), int(words[layout.W_OWNER_START]))
