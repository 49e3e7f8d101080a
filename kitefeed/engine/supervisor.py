"""The supervisor: a :class:`Feed` runs one worker process per API key.

The feed lives in the caller's process. It creates one shared-memory ring per key,
starts the workers, decides which key and connection carries each instrument, and
restarts a worker that dies. A monitor thread reads every worker's pipe, so replies,
server messages and exits are handled while the caller's thread does other work.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import multiprocessing
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Literal

from ..errors import FeedClosedError, FeedStateError, InvalidRequestError, RingError, WorkerError
from ..parsers import TICK_DTYPE, Mode
from ..parsers.text import BrokerMessage, ErrorMessage, InvalidMessage, OrderUpdate, UnknownMessage, parse_text
from ..ringbuf import Ring, list_segments
from .allocation import MAX_INSTRUMENTS_PER_CONNECTION, Allocation, Slot, validate_tokens
from .credentials import ApiKey
from .events import FeedEvent
from .messages import (
    ConnectionEvent,
    GetStats,
    SetMode,
    SetToken,
    StatsReply,
    Subscribe,
    TextEvent,
    Unsubscribe,
    decode_worker_message,
)
from .naming import default_feed_name, ring_name, validate_feed_name
from .process import PendingReply, WorkerHandle
from .stats import FeedStats, KeyStats

if TYPE_CHECKING:
    from .reader import FeedReader

__all__ = ["Feed", "KITE_TICKER_URL"]

logger = logging.getLogger(__name__)

KITE_TICKER_URL = "wss://ws.kite.trade"
"""Kite Connect's ticker endpoint."""

_MONITOR_PERIOD = 0.1
_EVENT_BACKLOG = 10_000
_STABLE_RUN = 30.0
"""A worker that ran this many seconds before dying is restarted without delay."""

_TEXT_KINDS: dict[type, str] = {
    OrderUpdate: "order",
    ErrorMessage: "error",
    BrokerMessage: "message",
    UnknownMessage: "unknown",
    InvalidMessage: "invalid",
}

_live_feeds: "weakref.WeakSet[Feed]" = weakref.WeakSet()


@atexit.register
def _stop_live_feeds() -> None:
    # A feed left running (no ``with``, no stop()) still removes its segments at exit.
    for feed in list(_live_feeds):
        feed.stop()


def _parse_keys(keys: Sequence[ApiKey] | Mapping[str, str]) -> list[ApiKey]:
    if isinstance(keys, Mapping):
        parsed = [ApiKey(api_key, token) for api_key, token in keys.items()]
    elif isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        raise InvalidRequestError(
            f"invalid keys {type(keys).__name__}: expected ApiKey objects or a mapping of api_key to access token"
        )
    else:
        parsed = []
        for key in keys:
            if not isinstance(key, ApiKey):
                raise InvalidRequestError(
                    f"invalid key {type(key).__name__}: expected kitefeed.ApiKey(api_key, access_token)"
                )
            parsed.append(key)
    if not parsed:
        raise InvalidRequestError("no API keys given: a feed needs at least one")
    names = [key.api_key for key in parsed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidRequestError(f"api_key {duplicates[0]!r} is given twice; pass each key once")
    return parsed


class Feed:
    """Ticks from several Kite Connect API keys, published into shared memory.

    Use it as a context manager (``with Feed(keys) as feed:``) or call :meth:`start`
    and :meth:`stop`. ``keys`` is a sequence of :class:`ApiKey` or a mapping of api_key
    to access token. ``url`` is the WebSocket root, e.g. a simulator's
    ``ws://127.0.0.1:port``. ``ring_capacity`` is the number of records per key's ring
    (a power of two; each record is ``TICK_DTYPE.itemsize`` = 272 bytes).
    ``instruments_per_connection`` caps each connection below Kite's 3,000, to spread
    instruments over more connections. ``on_event``,
    if given, is called from the feed's monitor thread with each :class:`FeedEvent`.
    """

    def __init__(
        self,
        keys: Sequence[ApiKey] | Mapping[str, str],
        *,
        name: str | None = None,
        url: str = KITE_TICKER_URL,
        ring_capacity: int = 1 << 18,
        instruments_per_connection: int = MAX_INSTRUMENTS_PER_CONNECTION,
        start_method: Literal["spawn", "forkserver"] = "spawn",
        liveness_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        request_timeout: float = 15.0,
        on_event: Callable[[FeedEvent], None] | None = None,
    ) -> None:
        self._keys = _parse_keys(keys)
        self.name = validate_feed_name(name) if name is not None else default_feed_name()
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise InvalidRequestError(f"invalid url {url!r}: expected a ws:// or wss:// address")
        if not isinstance(ring_capacity, int) or ring_capacity < 1024 or ring_capacity & (ring_capacity - 1):
            raise InvalidRequestError(
                f"invalid ring_capacity {ring_capacity!r}: expected a power of two of at least 1024"
            )
        if start_method not in ("spawn", "forkserver"):
            raise InvalidRequestError(
                f"invalid start_method {start_method!r}: expected 'spawn' or 'forkserver' (fork is unsafe with threads)"
            )
        if not isinstance(instruments_per_connection, int) or not 1 <= instruments_per_connection <= MAX_INSTRUMENTS_PER_CONNECTION:
            raise InvalidRequestError(
                f"invalid instruments_per_connection {instruments_per_connection!r}: "
                f"expected 1 to {MAX_INSTRUMENTS_PER_CONNECTION}, Kite's limit per connection"
            )
        for label, value in (("liveness_timeout", liveness_timeout), ("connect_timeout", connect_timeout)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise InvalidRequestError(f"invalid {label} {value!r}: expected a positive number of seconds")

        self.url = url
        self.ring_capacity = ring_capacity
        self.start_method = start_method
        self._liveness_timeout = float(liveness_timeout)
        self._connect_timeout = float(connect_timeout)
        self._request_timeout = float(request_timeout)
        self._on_event = on_event

        self._state: Literal["new", "running", "stopped"] = "new"
        self._lock = threading.RLock()
        self._allocation = Allocation(len(self._keys), instruments_per_connection=instruments_per_connection)
        self._rings: list[Ring] = []
        self._workers: list[WorkerHandle] = []
        self._restart_due: dict[int, float] = {}
        self._started_at: dict[int, float] = {}
        self._events: collections.deque[FeedEvent] = collections.deque(maxlen=_EVENT_BACKLOG)
        self._readers: weakref.WeakSet[FeedReader] = weakref.WeakSet()
        self._monitor: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> "Feed":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Feed {self.name!r} {self._state}, {len(self._keys)} keys, url={self.url!r}>"

    def start(self) -> "Feed":
        """Create the rings and start one worker per key; returns the feed."""
        with self._lock:
            if self._state != "new":
                raise FeedStateError(f"feed {self.name!r} is {self._state}; a feed starts once, create a new one")
            self._state = "running"
            _live_feeds.add(self)
        try:
            self._create_rings()
            context = multiprocessing.get_context(self.start_method)
            for key_index, key in enumerate(self._keys):
                handle = WorkerHandle(
                    key_index,
                    key,
                    context=context,
                    url=self.url,
                    ring_name=self._rings[key_index].name,
                    liveness_timeout=self._liveness_timeout,
                    connect_timeout=self._connect_timeout,
                )
                handle.start(self._request_timeout)
                self._started_at[key_index] = time.monotonic()
                self._workers.append(handle)
            self._monitor = threading.Thread(target=self._monitor_loop, name=f"kitefeed-monitor-{self.name}", daemon=True)
            self._monitor.start()
        except BaseException:
            self.stop()
            raise
        logger.info("feed %r started with %d keys", self.name, len(self._keys))
        return self

    def _create_rings(self) -> None:
        megabytes = self.ring_capacity * TICK_DTYPE.itemsize / 2**20
        logger.info(
            "feed %r: %d rings of %d records, %.1f MiB each, %.1f MiB in all",
            self.name,
            len(self._keys),
            self.ring_capacity,
            megabytes,
            megabytes * len(self._keys),
        )
        for key_index, key in enumerate(self._keys):
            user = json.dumps(
                {"feed": self.name, "key_index": key_index, "api_keys": self.keys, "api_key": key.api_key}
            ).encode()
            name = ring_name(self.name, key_index)
            if name in list_segments(name):
                raise FeedStateError(
                    f"a feed named {self.name!r} already has shared memory on this machine; "
                    "choose another name or remove the segments of the old feed"
                )
            self._rings.append(Ring.create(name, TICK_DTYPE, self.ring_capacity, user=user))

    def stop(self) -> None:
        """Stop the workers and remove the rings. Safe to call more than once."""
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
        self._stopping.set()

        for handle in self._workers:
            try:
                handle.stop(timeout=3.0)
            except Exception:  # noqa: BLE001 - keep stopping the others
                logger.exception("stopping worker for key index %d failed", handle.key_index)
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=2.0)

        for ring in self._rings:
            try:
                ring.mark_closed()
                ring.close()
                ring.unlink()
            except (OSError, RingError):
                logger.exception("removing ring %s failed", ring.name)
        _live_feeds.discard(self)
        logger.info("feed %r stopped", self.name)

    @property
    def ring_bytes(self) -> int:
        """Shared memory used by the feed's rings, in bytes (0 before start)."""
        return sum(ring.nbytes for ring in self._rings)

    @property
    def running(self) -> bool:
        return self._state == "running"

    def _require_running(self) -> None:
        if self._state != "running":
            state = "not started" if self._state == "new" else "stopped"
            raise FeedClosedError(f"feed {self.name!r} is {state}; call start() or use 'with Feed(...)' first")

    # -- keys and allocation --------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """The api_key of each worker, in key-index order."""
        return [key.api_key for key in self._keys]

    def _key_index(self, api_key: str) -> int:
        for index, key in enumerate(self._keys):
            if key.api_key == api_key:
                return index
        raise InvalidRequestError(f"unknown api_key {api_key!r}: this feed has {self.keys}")

    def distribution(self) -> dict[str, list[int]]:
        """Instruments per connection of each key, e.g. ``{"key1": [3000, 3000, 0]}``."""
        with self._lock:
            counts = self._allocation.distribution()
        return {key.api_key: counts[index] for index, key in enumerate(self._keys)}

    def subscriptions(self) -> dict[int, tuple[str, int, Mode]]:
        """Every subscribed instrument with its api_key, connection index and mode."""
        with self._lock:
            return {
                token: (self._keys[slot.key].api_key, slot.connection, self._allocation.mode_of[token])
                for token, slot in self._allocation.slot_of.items()
            }

    # -- subscription requests ------------------------------------------------------------

    def subscribe(self, tokens: int | Iterable[int], mode: Mode | str = Mode.QUOTE, *, key: str | None = None) -> None:
        """Subscribe instruments in ``mode`` (default quote), on ``key`` or spread round robin.

        Tokens already subscribed keep their key and connection and take the new mode.
        Raises :class:`CapacityError` if the new instruments do not fit, and
        :class:`InvalidRequestError` for a bad token, mode or key; either way nothing changes.
        """
        self._require_running()
        token_list = validate_tokens(tokens)
        parsed_mode = self._parse_mode(mode)
        key_index = None if key is None else self._key_index(key)

        with self._lock:
            plan = self._allocation.plan_subscribe(token_list, key_index)
            planned = {token for tokens_ in plan.slots.values() for token in tokens_}
            existing = [token for token in token_list if token not in planned]
            requests: list[tuple[WorkerHandle, Callable[[int], object]]] = []
            for slot, slot_tokens in plan.slots.items():
                requests.append((self._workers[slot.key], self._subscribe_command(slot, slot_tokens, parsed_mode)))
            for slot, slot_tokens in self._allocation.group_subscribed(existing).items():
                requests.append((self._workers[slot.key], self._mode_command(slot, slot_tokens, parsed_mode)))
            self._run_requests(requests)
            self._allocation.apply_subscribe(plan, token_list, parsed_mode)

    def unsubscribe(self, tokens: int | Iterable[int]) -> None:
        """Unsubscribe instruments; raises :class:`InvalidRequestError` if one is not subscribed."""
        self._require_running()
        token_list = validate_tokens(tokens)
        with self._lock:
            groups = self._allocation.group_subscribed(token_list)
            requests = [
                (self._workers[slot.key], self._unsubscribe_command(slot, slot_tokens))
                for slot, slot_tokens in groups.items()
            ]
            self._run_requests(requests)
            self._allocation.remove(token_list)

    def set_mode(self, tokens: int | Iterable[int], mode: Mode | str) -> None:
        """Change the mode of subscribed instruments."""
        self._require_running()
        token_list = validate_tokens(tokens)
        parsed_mode = self._parse_mode(mode)
        with self._lock:
            groups = self._allocation.group_subscribed(token_list)
            requests = [
                (self._workers[slot.key], self._mode_command(slot, slot_tokens, parsed_mode))
                for slot, slot_tokens in groups.items()
            ]
            self._run_requests(requests)
            for token in token_list:
                self._allocation.mode_of[token] = parsed_mode

    def set_access_token(self, api_key: str, access_token: str) -> None:
        """Give a key a new access token; its connections use it from their next handshake.

        A key whose token was rejected (HTTP 403) reconnects at once.
        """
        self._require_running()
        key_index = self._key_index(api_key)
        new_key = ApiKey(api_key, access_token)
        with self._lock:
            handle = self._workers[key_index]
            handle.key = new_key
            self._keys[key_index] = new_key
            self._run_requests([(handle, lambda command_id: SetToken(id=command_id, access_token=access_token))])

    @staticmethod
    def _parse_mode(mode: Mode | str) -> Mode:
        try:
            return Mode.parse(mode)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None

    @staticmethod
    def _subscribe_command(slot: Slot, tokens: list[int], mode: Mode) -> Callable[[int], object]:
        return lambda command_id: Subscribe(id=command_id, connection=slot.connection, tokens=tokens, mode=int(mode))

    @staticmethod
    def _unsubscribe_command(slot: Slot, tokens: list[int]) -> Callable[[int], object]:
        return lambda command_id: Unsubscribe(id=command_id, connection=slot.connection, tokens=tokens)

    @staticmethod
    def _mode_command(slot: Slot, tokens: list[int], mode: Mode) -> Callable[[int], object]:
        return lambda command_id: SetMode(id=command_id, connection=slot.connection, tokens=tokens, mode=int(mode))

    def _run_requests(self, requests: list[tuple[WorkerHandle, Callable[[int], object]]]) -> None:
        # Send everything first so that the workers carry out their parts in parallel.
        pending: list[PendingReply] = [handle.send(make) for handle, make in requests]
        for waiter in pending:
            waiter.wait(self._request_timeout)

    # -- statistics and events ------------------------------------------------------------

    def stats(self) -> FeedStats:
        """Statistics per connection, per key and in total, collected from the workers now."""
        self._require_running()
        waiters = [handle.send(lambda command_id: GetStats(id=command_id)) for handle in self._workers]
        lost = self._records_lost()
        keys: list[KeyStats] = []
        for handle, waiter in zip(self._workers, waiters):
            try:
                reply = waiter.wait(self._request_timeout)
            except WorkerError:
                reply = None
            connections = reply.connections if isinstance(reply, StatsReply) else []
            ring_position = reply.ring_position if isinstance(reply, StatsReply) else self._rings[handle.key_index].published
            keys.append(
                KeyStats(
                    api_key=handle.key.api_key,
                    key_index=handle.key_index,
                    worker_alive=handle.alive,
                    worker_restarts=handle.restarts,
                    connected=sum(c.connected for c in connections),
                    instruments=sum(c.instruments for c in connections),
                    frames=sum(c.frames for c in connections),
                    heartbeats=sum(c.heartbeats for c in connections),
                    bytes=sum(c.bytes for c in connections),
                    ticks=sum(c.ticks for c in connections),
                    parse_errors=sum(c.parse_errors for c in connections),
                    text_messages=sum(c.text_messages for c in connections),
                    ring_position=ring_position,
                    records_lost=lost[handle.key_index],
                    connections=connections,
                )
            )
        return FeedStats.from_keys(keys)

    def _records_lost(self) -> list[int]:
        lost = [0] * len(self._keys)
        for reader in list(self._readers):
            for api_key, count in reader.lost_per_key().items():
                lost[self._key_index(api_key)] += count
        return lost

    def poll_events(self) -> list[FeedEvent]:
        """Return and forget the events received since the last call (at most 10,000 are kept)."""
        events = []
        while self._events:
            events.append(self._events.popleft())
        return events

    def open_reader(
        self, *, keys: Sequence[str] | None = None, start: Literal["oldest", "newest"] = "oldest"
    ) -> "FeedReader":
        """Open a reader of this feed's rings (all keys, or ``keys``); its losses count in :meth:`stats`."""
        from .reader import open_reader

        self._require_running()
        reader = open_reader(self.name, keys=keys, start=start)
        self._readers.add(reader)
        return reader

    # -- the monitor thread ---------------------------------------------------------------

    def _monitor_loop(self) -> None:
        while not (self._stopping.is_set() and not any(h.pipe for h in self._workers)):
            self._restart_due_workers()
            by_object: dict[object, tuple[str, WorkerHandle]] = {}
            for handle in self._workers:
                if handle.pipe is not None and handle.process is not None:
                    by_object[handle.pipe] = ("pipe", handle)
                    by_object[handle.process.sentinel] = ("exit", handle)
            if not by_object:
                if self._stopping.wait(_MONITOR_PERIOD):
                    return
                continue
            try:
                ready = wait(list(by_object), timeout=_MONITOR_PERIOD)
            except (OSError, ValueError):
                continue  # a pipe was closed by stop() while we waited
            for obj in ready:
                what, handle = by_object[obj]
                if what == "pipe":
                    self._read_pipe(handle)
                elif handle.pipe is not None:
                    self._on_worker_exit(handle)

    def _read_pipe(self, handle: WorkerHandle) -> None:
        pipe = handle.pipe
        try:
            while pipe is not None and pipe.poll():
                message = decode_worker_message(pipe.recv_bytes())
                if isinstance(message, TextEvent):
                    self._push_event(handle, message.connection, parse_text(message.text))
                elif isinstance(message, ConnectionEvent):
                    self._push_event(handle, message.connection, message.state, kind="connection", detail=message.detail)
                else:
                    handle.resolve(message)
        except (EOFError, OSError):
            pass  # the process sentinel reports the exit

    def _push_event(self, handle: WorkerHandle, connection: int, data: object, *, kind: str | None = None, detail: str = "") -> None:
        if kind is None:
            kind = _TEXT_KINDS.get(type(data), "unknown")
        event = FeedEvent(
            api_key=handle.key.api_key,
            key_index=handle.key_index,
            connection=connection,
            kind=kind,
            data=data,
            detail=detail,
        )
        self._events.append(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a faulty callback must not stop the monitor
                logger.exception("on_event callback failed")

    def _on_worker_exit(self, handle: WorkerHandle) -> None:
        if self._stopping.is_set():
            return  # stop() reaps its workers itself; reaping from two threads races
        handle.discard()
        exitcode = handle.process.exitcode if handle.process is not None else None
        ran_for = time.monotonic() - self._started_at.get(handle.key_index, 0.0)
        delay = 0.0 if ran_for > _STABLE_RUN else min(5.0, 0.25 * 2 ** min(handle.restarts, 5))
        logger.error(
            "worker for key index %d exited with code %s after %.1f s; restarting in %.2f s",
            handle.key_index,
            exitcode,
            ran_for,
            delay,
        )
        self._push_event(handle, -1, "exited", kind="worker", detail=f"exit code {exitcode}")
        self._restart_due[handle.key_index] = time.monotonic() + delay

    def _restart_due_workers(self) -> None:
        now = time.monotonic()
        for key_index, due in list(self._restart_due.items()):
            if due > now or self._stopping.is_set():
                continue
            del self._restart_due[key_index]
            handle = self._workers[key_index]
            try:
                handle.start(self._request_timeout)
            except WorkerError as exc:
                logger.error("restarting worker for key index %d failed: %s", key_index, exc)
                handle.restarts += 1
                self._restart_due[key_index] = now + min(5.0, 0.25 * 2 ** min(handle.restarts, 5))
                continue
            handle.restarts += 1
            self._started_at[key_index] = now
            self._restore_subscriptions(handle)
            self._push_event(handle, -1, "restarted", kind="worker", detail=f"restart {handle.restarts}")

    def _restore_subscriptions(self, handle: WorkerHandle) -> None:
        with self._lock:
            for connection in range(self._allocation.connections_per_key):
                by_mode: dict[Mode, list[int]] = {}
                for token, mode in self._allocation.tokens_of(Slot(handle.key_index, connection)).items():
                    by_mode.setdefault(mode, []).append(token)
                for mode, tokens in by_mode.items():
                    # Replies are not awaited here: this thread is the one that reads them.
                    handle.send(self._subscribe_command(Slot(handle.key_index, connection), tokens, mode))
