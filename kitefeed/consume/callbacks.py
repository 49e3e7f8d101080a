"""Call a function with every batch of a reader, from a thread or an asyncio task.

:func:`on_ticks` starts a thread that reads batches from a :class:`~kitefeed.FeedReader`
and calls ``callback(batch)`` with each. :func:`on_ticks_async` does the same in an
asyncio task, without blocking the event loop. An exception raised by the callback is
logged and counted in ``stats()``, and the next batch is delivered as usual.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import msgspec
import numpy as np

from ..engine import FeedReader
from ..errors import InvalidRequestError, KitefeedError

__all__ = ["AsyncConsumer", "Consumer", "ConsumerStats", "on_ticks", "on_ticks_async"]

logger = logging.getLogger(__name__)

READ_SLICE = 0.1
"""Seconds a consumer waits for one batch before it checks whether it was asked to stop."""

ERROR_LOG_INTERVAL = 1.0
"""Seconds between two log entries about callback exceptions; the ones in between are only counted."""


class ConsumerStats(msgspec.Struct, frozen=True):
    """Counters of one consumer since it started.

    ``batches`` and ``records`` count what was passed to the callback, ``errors`` the
    calls that raised. ``last_error`` is the ``repr`` of the latest exception, or None.
    ``running`` is False once the consumer stopped: after ``stop()``, after the feed
    stopped and every record was read, or after the reader failed (``reader_error``
    contains that exception's ``repr``).
    """

    running: bool
    batches: int
    records: int
    errors: int
    last_error: str | None
    reader_error: str | None


class _Counters:
    """Mutable counters shared by the thread and the asyncio consumer; read under a lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.running = True
        self.batches = 0
        self.records = 0
        self.errors = 0
        self.last_error: str | None = None
        self.reader_error: str | None = None
        self._next_log = 0.0
        self._unlogged = 0

    def delivered(self, count: int) -> None:
        with self.lock:
            self.batches += 1
            self.records += count

    def failed(self, exc: Exception) -> None:
        with self.lock:
            self.errors += 1
            self.last_error = repr(exc)

        # Logs at most one traceback per interval, so a callback that fails on every
        # batch does not flood the log; the count of the skipped ones is logged with it.
        now = time.monotonic()
        if now < self._next_log:
            self._unlogged += 1
            return
        self._next_log = now + ERROR_LOG_INTERVAL
        skipped, self._unlogged = self._unlogged, 0
        logger.error(
            "%s: callback raised (%d errors so far, %d not logged since the previous entry)",
            self.name,
            self.errors,
            skipped,
            exc_info=exc,
        )

    def snapshot(self) -> ConsumerStats:
        with self.lock:
            return ConsumerStats(
                running=self.running,
                batches=self.batches,
                records=self.records,
                errors=self.errors,
                last_error=self.last_error,
                reader_error=self.reader_error,
            )


def _check_arguments(reader: object, callback: object, max_records: int | None) -> None:
    if not isinstance(reader, FeedReader):
        raise InvalidRequestError(
            f"invalid reader {reader!r}: expected a kitefeed.FeedReader from Feed.open_reader() or open_reader()"
        )
    if not callable(callback):
        raise InvalidRequestError(f"invalid callback {callback!r}: expected a function that takes one batch")
    if max_records is not None and (isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1):
        raise InvalidRequestError(f"invalid max_records {max_records!r}: expected a positive int or None")


class Consumer:
    """A thread that passes every batch of a reader to a callback.

    Create it with :func:`on_ticks`. It runs until :meth:`stop`, until the feed stops
    and every record has been read, or until the reader raises (for example
    :class:`~kitefeed.RingAbandonedError` when the feed's process died). The consumer
    never closes the reader: the caller that opened it closes it after :meth:`stop`.
    """

    def __init__(
        self,
        reader: FeedReader,
        callback: Callable[[np.ndarray[Any, Any]], object],
        *,
        copy: bool = False,
        max_records: int | None = None,
    ) -> None:
        _check_arguments(reader, callback, max_records)
        self.reader = reader
        self._callback = callback
        self._copy = copy
        self._max_records = max_records
        self._stopping = threading.Event()
        self._counters = _Counters(f"consumer of feed {reader.feed_name!r}")
        self._thread = threading.Thread(target=self._run, name=f"kitefeed-consumer-{reader.feed_name}", daemon=True)
        self._thread.start()
        logger.info("consumer of feed %r started", reader.feed_name)

    def _run(self) -> None:
        reader = self.reader
        try:
            while not self._stopping.is_set():
                batch = reader.read(READ_SLICE, self._max_records)
                if not len(batch):
                    if reader.closed:
                        logger.info("consumer of feed %r: the feed stopped and every record was read", reader.feed_name)
                        return
                    continue
                if self._copy:
                    batch = batch.copy()
                try:
                    self._callback(batch)
                except Exception as exc:
                    self._counters.failed(exc)
                self._counters.delivered(len(batch))
        except KitefeedError as exc:
            self._counters.reader_error = repr(exc)
            logger.error("consumer of feed %r stopped: reading failed: %s", reader.feed_name, exc)
        finally:
            self._counters.running = False

    def stop(self, timeout: float | None = None) -> bool:
        """Stop delivering batches and wait for the thread; return whether it ended within ``timeout``.

        The thread ends after the callback call in progress returns, and within
        :data:`READ_SLICE` seconds while it waits for a batch. Calling ``stop`` from the
        callback itself only signals the thread to stop, and returns False.
        """
        self._stopping.set()
        if threading.current_thread() is self._thread:
            return False
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if stopped:
            logger.info("consumer of feed %r stopped", self.reader.feed_name)
        return stopped

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the consumer ends by itself (the feed stopped); return whether it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether the thread still delivers batches."""
        return self._thread.is_alive()

    def stats(self) -> ConsumerStats:
        """Return the counters of batches, records and callback errors so far."""
        return self._counters.snapshot()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Consumer feed={self.reader.feed_name!r} running={self.running}>"


def on_ticks(
    reader: FeedReader,
    callback: Callable[[np.ndarray[Any, Any]], object],
    *,
    copy: bool = False,
    max_records: int | None = None,
) -> Consumer:
    """Start a thread that calls ``callback(batch)`` with every batch of ``reader``; return it.

    ``batch`` is a 1-D array of :data:`~kitefeed.TICK_DTYPE`. Without ``copy`` it is the
    reader's read-only view into shared memory, valid until the writer of its key has
    published ``ring_capacity`` more records, so a callback that keeps it must copy it.
    With ``copy=True`` each batch is a new writable array that the callback owns.
    ``max_records`` caps the length of a batch. The callback runs in the consumer's
    thread and should return quickly, because the reader loses records while it is
    behind by more than ``ring_capacity``. Use the result as a context manager, or call
    ``stop()``.
    """
    return Consumer(reader, callback, copy=copy, max_records=max_records)


class AsyncConsumer:
    """An asyncio task that passes every batch of a reader to a callback.

    Create it with :func:`on_ticks_async` inside a running event loop. The callback may
    be a plain function or a coroutine function; a coroutine is awaited before the next
    batch is read. Like :class:`Consumer`, it counts callback exceptions instead of
    raising them and never closes the reader.
    """

    def __init__(
        self,
        reader: FeedReader,
        callback: Callable[[np.ndarray[Any, Any]], object | Awaitable[object]],
        *,
        copy: bool = False,
        max_records: int | None = None,
    ) -> None:
        _check_arguments(reader, callback, max_records)
        self.reader = reader
        self._callback = callback
        self._copy = copy
        self._max_records = max_records
        self._counters = _Counters(f"async consumer of feed {reader.feed_name!r}")
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"kitefeed-consumer-{reader.feed_name}")

    async def _run(self) -> None:
        reader = self.reader
        try:
            while True:
                batch = await reader.read_async(READ_SLICE, self._max_records)
                if not len(batch):
                    if reader.closed:
                        return
                    continue
                if self._copy:
                    batch = batch.copy()
                try:
                    result = self._callback(batch)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self._counters.failed(exc)
                self._counters.delivered(len(batch))
        except KitefeedError as exc:
            self._counters.reader_error = repr(exc)
            logger.error("async consumer of feed %r stopped: reading failed: %s", reader.feed_name, exc)
        finally:
            self._counters.running = False

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            # Re-raises only when the task calling stop() was itself cancelled meanwhile.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def wait(self) -> None:
        """Wait until the consumer ends by itself: the feed stopped, or the reader failed."""
        await asyncio.shield(self._task)

    @property
    def running(self) -> bool:
        """Whether the task still delivers batches."""
        return not self._task.done()

    def stats(self) -> ConsumerStats:
        """Return the counters of batches, records and callback errors so far."""
        return self._counters.snapshot()

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()


def on_ticks_async(
    reader: FeedReader,
    callback: Callable[[np.ndarray[Any, Any]], object | Awaitable[object]],
    *,
    copy: bool = False,
    max_records: int | None = None,
) -> AsyncConsumer:
    """Start an asyncio task that calls ``callback(batch)`` with every batch of ``reader``; return it.

    Must be called from a coroutine. Batches, ``copy`` and ``max_records`` are as in
    :func:`on_ticks`. Use the result with ``async with``, or ``await consumer.stop()``.
    """
    return AsyncConsumer(reader, callback, copy=copy, max_records=max_records)
