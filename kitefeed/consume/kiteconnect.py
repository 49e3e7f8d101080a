"""Deliver kitefeed ticks in the shape of the official client's ``KiteTicker`` callbacks.

Code written for ``kiteconnect.KiteTicker`` (the official Python client, version 5.2.2)
sets ``on_ticks(ws, ticks)`` and friends, calls ``connect()``, and subscribes from
``on_connect``. :class:`KiteTickerAdapter` keeps those names and signatures on top of a
:class:`~kitefeed.Feed` or a :class:`~kitefeed.FeedReader`, so such code switches by
changing how the object is built. :func:`iter_kiteconnect` is the same conversion as a
plain iterator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..engine import Feed, FeedEvent, FeedReader
from ..errors import FeedStateError, InvalidRequestError, KitefeedError
from ..parsers import to_kiteconnect
from .callbacks import READ_SLICE, ConsumerStats, _Counters

__all__ = ["KiteTickerAdapter", "iter_kiteconnect"]

logger = logging.getLogger(__name__)


def iter_kiteconnect(reader: FeedReader) -> Iterator[list[dict[str, Any]]]:
    """Yield, for every batch of ``reader``, the list of tick dicts that ``KiteTicker`` passes to ``on_ticks``.

    Each list is :func:`kitefeed.to_kiteconnect` of one batch: the same keys, order and
    nesting as the official client, with times as aware datetimes in IST and None for a
    time that was 0 on the wire. The dicts are new Python objects that the caller owns.
    Iteration ends when the feed stops and every record has been read.
    """
    for batch in reader:
        yield to_kiteconnect(batch)


class KiteTickerAdapter:
    """Callbacks with the names and signatures of ``kiteconnect.KiteTicker``, fed by kitefeed.

    Build it from a running :class:`~kitefeed.Feed` (then :meth:`subscribe`,
    :meth:`unsubscribe` and :meth:`set_mode` act on the feed, and feed events reach
    ``on_order_update``, ``on_error``, ``on_reconnect`` and ``on_noreconnect``), or from
    a :class:`~kitefeed.FeedReader` alone (for example one from
    ``kitefeed.open_reader(name)`` in another process; then only ticks are delivered).

    Set the callbacks as attributes, as with ``KiteTicker``:

    * ``on_ticks(ws, ticks)``: ``ticks`` is :func:`kitefeed.to_kiteconnect` of one batch.
      A batch holds the ticks of one or more frames, so a list may be longer than one
      frame of the official client.
    * ``on_connect(ws, response)``: called once when :meth:`connect` starts, with
      ``response`` None; subscribe here.
    * ``on_close(ws, code, reason)``: called once when delivery ends, with ``code`` None.
    * ``on_order_update(ws, data)``: ``data`` is the order dict of an ``order`` message.
    * ``on_error(ws, code, reason)``: ``code`` is 0 and ``reason`` the text of an
      ``error`` message from the server, as in the official client.
    * ``on_reconnect(ws, attempts_count)``: a connection of some key waits to retry;
      ``attempts_count`` counts its retries since it was last connected.
    * ``on_noreconnect(ws)``: a connection gave up (its retries ran out, or its token
      was rejected).

    Feed events are taken with ``feed.poll_events()`` between batches, so while the
    adapter runs with one of the event callbacks set, nothing else should poll the
    feed's events. An exception raised by a callback is logged and counted in
    :meth:`stats`, as in :class:`~kitefeed.consume.Consumer`.
    """

    MODE_LTP = "ltp"
    MODE_QUOTE = "quote"
    MODE_FULL = "full"

    def __init__(self, source: Feed | FeedReader, *, start: str = "newest") -> None:
        if isinstance(source, Feed):
            self.feed: Feed | None = source
            self.reader: FeedReader | None = None
        elif isinstance(source, FeedReader):
            self.feed = None
            self.reader = source
        else:
            raise InvalidRequestError(f"invalid source {source!r}: expected a running kitefeed.Feed or a FeedReader")
        self._start = start

        self.on_ticks: Callable[[KiteTickerAdapter, list[dict[str, Any]]], object] | None = None
        self.on_connect: Callable[[KiteTickerAdapter, None], object] | None = None
        self.on_close: Callable[[KiteTickerAdapter, None, str], object] | None = None
        self.on_error: Callable[[KiteTickerAdapter, int, str], object] | None = None
        self.on_order_update: Callable[[KiteTickerAdapter, dict[str, Any]], object] | None = None
        self.on_reconnect: Callable[[KiteTickerAdapter, int], object] | None = None
        self.on_noreconnect: Callable[[KiteTickerAdapter], object] | None = None

        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._owns_reader = False
        self._connected = False
        self._retries: dict[tuple[int, int], int] = {}
        name = source.name if isinstance(source, Feed) else source.feed_name
        self._counters = _Counters(f"kiteconnect adapter of feed {name!r}")

    # -- subscriptions, forwarded to the feed ---------------------------------------------

    def _running_feed(self, action: str) -> Feed:
        if self.feed is None:
            raise FeedStateError(
                f"cannot {action}: this adapter reads a feed by its reader only; "
                "build it from the Feed, or call the Feed's method in the feed's process"
            )
        return self.feed

    def subscribe(self, instrument_tokens: Iterable[int]) -> bool:
        """Subscribe instruments in quote mode, the server's default; returns True like ``KiteTicker``."""
        self._running_feed("subscribe").subscribe(list(instrument_tokens), self.MODE_QUOTE)
        return True

    def unsubscribe(self, instrument_tokens: Iterable[int]) -> bool:
        """Unsubscribe instruments; returns True like ``KiteTicker``."""
        self._running_feed("unsubscribe").unsubscribe(list(instrument_tokens))
        return True

    def set_mode(self, mode: str, instrument_tokens: Iterable[int]) -> bool:
        """Set the mode of subscribed instruments (``KiteTicker`` order: mode first); returns True."""
        self._running_feed("set_mode").set_mode(list(instrument_tokens), mode)
        return True

    # -- delivery -------------------------------------------------------------------------

    def connect(self, threaded: bool = False) -> None:
        """Start delivering ticks: in this thread until :meth:`close` or the feed stops, or in a new one.

        Built from a feed, the adapter opens its own reader, from the newest record
        unless ``start="oldest"`` was given, and closes it when delivery ends.
        """
        if self._thread is not None or self._connected:
            raise FeedStateError("the adapter is already connected; create a new one to connect again")
        if self.reader is None:
            assert self.feed is not None
            self.reader = self.feed.open_reader(start=self._start)  # type: ignore[arg-type]
            self._owns_reader = True
        self._connected = True

        if threaded:
            self._thread = threading.Thread(target=self._run, name="kitefeed-kiteconnect-adapter", daemon=True)
            self._thread.start()
        else:
            self._run()

    def _run(self) -> None:
        reader = self.reader
        assert reader is not None
        reason = "closed by the application"
        self._call(self.on_connect, None)
        try:
            while not self._stopping.is_set():
                self._dispatch_events()
                batch = reader.read(READ_SLICE)
                if not len(batch):
                    if reader.closed:
                        reason = "the feed stopped"
                        break
                    continue
                if self.on_ticks is not None:
                    self._call(self.on_ticks, to_kiteconnect(batch))
                self._counters.delivered(len(batch))
        except KitefeedError as exc:
            reason = f"reading failed: {exc}"
            self._counters.reader_error = repr(exc)
            logger.error("kiteconnect adapter of feed %r stopped: %s", reader.feed_name, reason)
        finally:
            self._dispatch_events()
            self._connected = False
            self._counters.running = False
            if self._owns_reader:
                reader.close()
            self._call(self.on_close, None, reason)

    def _call(self, callback: Callable[..., object] | None, *arguments: Any) -> None:
        if callback is None:
            return
        try:
            callback(self, *arguments)
        except Exception as exc:
            self._counters.failed(exc)

    def _dispatch_events(self) -> None:
        wanted = (self.on_order_update, self.on_error, self.on_reconnect, self.on_noreconnect)
        if self.feed is None or all(callback is None for callback in wanted):
            return
        for event in self.feed.poll_events():
            self._dispatch(event)

    def _dispatch(self, event: FeedEvent) -> None:
        # The text message's payload is the ``data`` of the parsed message object.
        payload = getattr(event.data, "data", event.data)
        if event.kind == "order":
            self._call(self.on_order_update, payload)
        elif event.kind == "error":
            self._call(self.on_error, 0, payload)
        elif event.kind == "connection":
            where = (event.key_index, event.connection)
            if event.data == "connected":
                self._retries.pop(where, None)
            elif event.data == "backoff":
                self._retries[where] = self._retries.get(where, 0) + 1
                self._call(self.on_reconnect, self._retries[where])
            elif event.data in ("failed", "auth_failed"):
                self._call(self.on_noreconnect)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Stop delivering ticks and wait for a threaded adapter's thread; ``code`` and ``reason`` are ignored."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def stop(self) -> None:
        """Stop delivering ticks; the same as :meth:`close`."""
        self.close()

    def is_connected(self) -> bool:
        """Return whether the adapter is delivering ticks."""
        return self._connected

    def stats(self) -> ConsumerStats:
        """Return the counters of batches and records delivered and of callback errors."""
        return self._counters.snapshot()
