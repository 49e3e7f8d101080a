"""The public :class:`Feed`: ticks of many API keys, published into shared memory."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import FeedClosedError, FeedStateError, InvalidRequestError, RingError, WorkerError
from ..parsers import TICK_DTYPE, Mode
from ..ringbuf import Doorbell, Ring, Wait
from ..ringbuf.waiting import DEFAULT_SPIN_US
from .allocation import MAX_INSTRUMENTS_PER_CONNECTION, POLICIES, Allocation, validate_tokens
from .credentials import ApiKey, parse_keys
from .events import FeedEvent
from .messages import ConnectionSettings, GetStats, ReconnectPolicy, StatsReply
from .transport import DEFAULT_TRANSPORT, check_transport
from .naming import default_feed_name, doorbell_name, validate_feed_name
from .segments import claim_feed_name, create_key_ring
from .stats import FeedStats, KeyStats
from .statsboard import StatsBoard
from .steps import Step, mode_step, subscribe_step, unsubscribe_step
from .supervisor import Supervisor

if TYPE_CHECKING:
    from .reader import FeedReader

__all__ = ["Feed", "KITE_TICKER_URL"]

logger = logging.getLogger(__name__)

KITE_TICKER_URL = "wss://ws.kite.trade"
"""Kite Connect's ticker endpoint."""

_BOARD_PERIOD = 1.0
"""Seconds between statistics published for other processes (``kitefeed stats``)."""

_live_feeds: "weakref.WeakSet[Feed]" = weakref.WeakSet()


@atexit.register
def _stop_live_feeds() -> None:
    # A feed left running (no ``with``, no stop()) still removes its segments at exit.
    for feed in list(_live_feeds):
        feed.stop()


def _journal_directory(path: str | os.PathLike[str]) -> str:
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidRequestError(f"invalid journal_dir {str(path)!r}: cannot create it: {exc.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise InvalidRequestError(f"invalid journal_dir {str(path)!r}: not writable by this user")
    return str(directory.resolve())


def _positive_seconds(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidRequestError(f"invalid {label} {value!r}: expected a positive number of seconds")
    return float(value)


class Feed:
    """Ticks from several Kite Connect API keys, published into shared memory.

    Use it as a context manager (``with Feed(keys) as feed:``) or call :meth:`start`
    and :meth:`stop`. ``keys`` is a sequence of :class:`ApiKey` or a mapping of api_key
    to access token.

    ``url`` is the WebSocket root, e.g. a simulator's ``ws://127.0.0.1:port``.
    ``ring_capacity`` is the number of records in each key's ring (a power of two; each
    record takes ``TICK_DTYPE.itemsize`` = 272 bytes). ``allocation`` is the policy for
    instruments whose key a request does not name: ``"round_robin"`` or
    ``"least_loaded"``. ``instruments_per_connection`` caps each connection below Kite's
    3,000, to spread instruments over more connections. ``liveness_timeout`` is how long a
    connection may receive nothing (not even a heartbeat) before it reconnects.
    ``reconnect`` sets the delays between attempts. With ``failover`` (the default), the
    instruments of a key whose token is rejected move to keys with room, and come back
    after :meth:`set_access_token`. ``on_event``, if given, is called from the feed's
    monitor thread with each :class:`FeedEvent`; it must return quickly. ``transport``
    names the WebSocket library of the workers' connections: ``"picows"`` (the default,
    the lower CPU time per message) or ``"websockets"``. With ``journal_dir``, each
    worker also appends every raw message it receives, with its receive time, key and
    connection, to journal files there (see :mod:`kitefeed.record.journal`), from which
    any day can be decoded again. Messages that cannot be written (a full disk) are
    counted in ``stats().keys[i].journal_failures``; the feed goes on.
    """

    def __init__(
        self,
        keys: Sequence[ApiKey] | Mapping[str, str],
        *,
        name: str | None = None,
        url: str = KITE_TICKER_URL,
        ring_capacity: int = 1 << 18,
        allocation: Literal["round_robin", "least_loaded"] = "round_robin",
        instruments_per_connection: int = MAX_INSTRUMENTS_PER_CONNECTION,
        start_method: Literal["spawn", "forkserver"] = "spawn",
        liveness_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        request_timeout: float = 15.0,
        reconnect: ReconnectPolicy | None = None,
        failover: bool = True,
        on_event: Callable[[FeedEvent], None] | None = None,
        transport: Literal["picows", "websockets"] = DEFAULT_TRANSPORT,
        journal_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._keys = parse_keys(keys)
        self.name = validate_feed_name(name) if name is not None else default_feed_name()
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise InvalidRequestError(f"invalid url {url!r}: expected a ws:// or wss:// address")
        if not isinstance(ring_capacity, int) or ring_capacity < 1024 or ring_capacity & (ring_capacity - 1):
            raise InvalidRequestError(
                f"invalid ring_capacity {ring_capacity!r}: expected a power of two of at least 1024"
            )
        if allocation not in POLICIES:
            raise InvalidRequestError(f"invalid allocation {allocation!r}: expected one of {sorted(POLICIES)}")
        if start_method not in ("spawn", "forkserver"):
            raise InvalidRequestError(
                f"invalid start_method {start_method!r}: expected 'spawn' or 'forkserver' (fork is unsafe with threads)"
            )
        if (
            isinstance(instruments_per_connection, bool)
            or not isinstance(instruments_per_connection, int)
            or not 1 <= instruments_per_connection <= MAX_INSTRUMENTS_PER_CONNECTION
        ):
            raise InvalidRequestError(
                f"invalid instruments_per_connection {instruments_per_connection!r}: "
                f"expected 1 to {MAX_INSTRUMENTS_PER_CONNECTION}, Kite's limit per connection"
            )
        if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
            raise InvalidRequestError(f"invalid reconnect {reconnect!r}: expected a kitefeed.ReconnectPolicy")

        self.url = url
        self.ring_capacity = ring_capacity
        self.start_method = start_method
        self._settings = ConnectionSettings(
            liveness_timeout=_positive_seconds("liveness_timeout", liveness_timeout),
            connect_timeout=_positive_seconds("connect_timeout", connect_timeout),
            reconnect=reconnect or ReconnectPolicy(),
            transport=check_transport(transport),
            journal_dir=None if journal_dir is None else _journal_directory(journal_dir),
            feed_name=self.name,
        )
        self._request_timeout = _positive_seconds("request_timeout", request_timeout)
        self._failover = bool(failover)
        self._on_event = on_event
        self._allocation = Allocation(
            len(self._keys), policy=allocation, instruments_per_connection=instruments_per_connection
        )

        self._state: Literal["new", "running", "stopped"] = "new"
        self._state_lock = threading.Lock()
        self._rings: list[Ring] = []
        self._doorbell: Doorbell | None = None
        self._board: StatsBoard | None = None
        self._board_thread: threading.Thread | None = None
        self._board_stop = threading.Event()
        self._supervisor: Supervisor | None = None
        self._readers: weakref.WeakSet[FeedReader] = weakref.WeakSet()

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> "Feed":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Feed {self.name!r} {self._state}, {len(self._keys)} keys, url={self.url!r}>"

    def start(self) -> "Feed":
        """Create the rings and start one worker per key; returns the feed."""
        with self._state_lock:
            if self._state != "new":
                raise FeedStateError(f"feed {self.name!r} is {self._state}; a feed starts once, create a new one")
            self._state = "running"
            _live_feeds.add(self)
        try:
            self._create_rings()
            self._supervisor = Supervisor(
                self._keys,
                self._rings,
                self._allocation,
                context=multiprocessing.get_context(self.start_method),
                url=self.url,
                settings=self._settings,
                request_timeout=self._request_timeout,
                failover=self._failover,
                on_event=self._on_event,
            )
            self._supervisor.start()
            self._board_thread = threading.Thread(target=self._publish_stats, name="kitefeed-stats", daemon=True)
            self._board_thread.start()
        except BaseException:
            self.stop()
            raise
        logger.info("feed %r started with %d keys", self.name, len(self._keys))
        return self

    def _create_rings(self) -> None:
        # Segments left by a killed feed of this name go first. A live feed's segments
        # stay, and then this name cannot be used.
        claim_feed_name(self.name)

        megabytes = self.ring_capacity * TICK_DTYPE.itemsize / 2**20
        logger.info(
            "feed %r: %d rings of %d records, %.1f MiB each, %.1f MiB in all",
            self.name,
            len(self._keys),
            self.ring_capacity,
            megabytes,
            megabytes * len(self._keys),
        )
        # One doorbell for all rings lets a reader of every key block until any key publishes.
        self._doorbell = Doorbell.create(doorbell_name(self.name))
        self._board = StatsBoard(self.name)
        for key_index, key in enumerate(self._keys):
            self._rings.append(self._create_ring(key_index, key))

    def _create_ring(self, key_index: int, key: ApiKey) -> Ring:
        assert self._doorbell is not None
        return create_key_ring(self.name, key_index, key.api_key, self.ring_capacity, self._doorbell.name)

    def stop(self) -> None:
        """Stop the workers and remove the rings. Safe to call more than once."""
        with self._state_lock:
            if self._state == "stopped":
                return
            self._state = "stopped"

        self._board_stop.set()
        if self._board_thread is not None:
            self._board_thread.join(timeout=5.0)
        if self._supervisor is not None:
            self._supervisor.stop()
        if self._board is not None:
            try:
                self._board.close()
            except (OSError, RingError):
                logger.exception("removing the statistics board of feed %r failed", self.name)
        for ring in self._rings:
            try:
                ring.mark_closed()
                ring.close()
                ring.unlink()
            except (OSError, RingError):
                logger.exception("removing ring %s failed", ring.name)
        if self._doorbell is not None:
            try:
                self._doorbell.close()
                self._doorbell.unlink()
            except (OSError, RingError):
                logger.exception("removing doorbell %s failed", self._doorbell.name)
        _live_feeds.discard(self)
        logger.info("feed %r stopped", self.name)

    @property
    def running(self) -> bool:
        """Whether the feed has started and not yet stopped."""
        return self._state == "running"

    @property
    def ring_bytes(self) -> int:
        """Shared memory used by the feed's rings, in bytes (0 before start)."""
        return sum(ring.nbytes for ring in self._rings)

    def _running_supervisor(self) -> Supervisor:
        if self._state != "running" or self._supervisor is None:
            state = "not started" if self._state == "new" else "stopped"
            raise FeedClosedError(f"feed {self.name!r} is {state}; call start() or use 'with Feed(...)' first")
        return self._supervisor

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
        """Return the instruments per connection of each key, e.g. ``{"key1": [3000, 3000, 0]}``."""
        return {key.api_key: counts for key, counts in zip(self._keys, self._allocation.distribution())}

    def subscriptions(self) -> dict[int, tuple[str, int, Mode]]:
        """Return every subscribed instrument with its api_key, connection index and mode."""
        allocation = self._allocation
        return {
            token: (self._keys[slot.key].api_key, slot.connection, allocation.mode_of[token])
            for token, slot in list(allocation.slot_of.items())
        }

    # -- subscription requests ------------------------------------------------------------

    def subscribe(self, tokens: int | Iterable[int], mode: Mode | str = Mode.QUOTE, *, key: str | None = None) -> None:
        """Subscribe instruments in ``mode`` (default quote), on ``key`` or by the allocation policy.

        Tokens already subscribed keep their key and connection and take the new mode.
        Raises :class:`CapacityError` if the new instruments do not fit, and
        :class:`InvalidRequestError` for a bad token, mode or key; either way nothing changes.
        """
        supervisor = self._running_supervisor()
        token_list = validate_tokens(tokens)
        parsed_mode = _parse_mode(mode)
        key_index = None if key is None else self._key_index(key)

        with supervisor.lock:
            allocation = self._allocation
            plan = allocation.plan_subscribe(token_list, key_index, exclude=frozenset(supervisor.failed_keys))
            planned = {token for group in plan.slots.values() for token in group}
            existing = [token for token in token_list if token not in planned]
            steps: list[Step] = [subscribe_step(slot, group, parsed_mode) for slot, group in plan.slots.items()]
            for slot, group in allocation.group_subscribed(existing).items():
                steps.append(mode_step(slot, group, allocation.mode_of, parsed_mode))
            supervisor.execute(steps)
            allocation.apply_subscribe(plan, token_list, parsed_mode)

    def unsubscribe(self, tokens: int | Iterable[int]) -> None:
        """Unsubscribe instruments; raises :class:`InvalidRequestError` if one is not subscribed."""
        supervisor = self._running_supervisor()
        token_list = validate_tokens(tokens)
        with supervisor.lock:
            allocation = self._allocation
            groups = allocation.group_subscribed(token_list)
            supervisor.execute(unsubscribe_step(slot, group, allocation.mode_of) for slot, group in groups.items())
            allocation.remove(token_list)
            supervisor.forget(token_list)

    def set_mode(self, tokens: int | Iterable[int], mode: Mode | str) -> None:
        """Change the mode of subscribed instruments."""
        supervisor = self._running_supervisor()
        token_list = validate_tokens(tokens)
        parsed_mode = _parse_mode(mode)
        with supervisor.lock:
            allocation = self._allocation
            groups = allocation.group_subscribed(token_list)
            supervisor.execute(
                mode_step(slot, group, allocation.mode_of, parsed_mode) for slot, group in groups.items()
            )
            for token in token_list:
                allocation.mode_of[token] = parsed_mode

    def set_access_token(self, api_key: str, access_token: str) -> None:
        """Give a key a new access token; its connections use it from their next handshake.

        A key whose token was rejected (HTTP 403) reconnects at once and gets back the
        instruments that failover moved to other keys.
        """
        supervisor = self._running_supervisor()
        key_index = self._key_index(api_key)
        new_key = ApiKey(api_key, access_token)
        supervisor.set_token(key_index, new_key)
        self._keys[key_index] = new_key

    def add_key(self, api_key: str, access_token: str, *, rebalance: bool = True) -> None:
        """Add an API key to the running feed: a new ring and worker, ready for instruments.

        With ``rebalance`` (the default), instruments then move from the other keys so
        that every working key carries about as many. Readers of all keys pick up the
        new key's ring by themselves. Raises :class:`InvalidRequestError` for a key the
        feed already has.
        """
        supervisor = self._running_supervisor()
        key = ApiKey(api_key, access_token)
        with supervisor.lock:
            if api_key in self.keys:
                raise InvalidRequestError(f"api_key {api_key!r} is already in feed {self.name!r}")
            ring = self._create_ring(len(self._keys), key)
            # The supervisor shares these lists; a worker's key index is its position.
            self._keys.append(key)
            self._rings.append(ring)
            try:
                supervisor.add_worker(key, ring)
            except BaseException:
                self._keys.pop()
                self._rings.pop()
                ring.mark_closed()
                ring.close()
                ring.unlink()
                raise
            self._allocation.add_key()
        logger.info("feed %r: added key %s", self.name, api_key)
        if rebalance:
            supervisor.rebalance()

    def rebalance(self) -> int:
        """Move instruments so that the working keys carry about as many each; return how many moved.

        Keys whose token was rejected are left out. The moves reach the server as bulk
        unsubscribe and subscribe requests, so each moved instrument may miss a tick.
        """
        return self._running_supervisor().rebalance()

    # -- statistics and events ------------------------------------------------------------

    def worker_pids(self) -> dict[str, int | None]:
        """Return the process id of each key's worker, None while one is being restarted."""
        supervisor = self._running_supervisor()
        return {
            handle.key.api_key: handle.process.pid if handle.process is not None else None
            for handle in supervisor.workers
        }

    def stats(self) -> FeedStats:
        """Return statistics per connection, per key and in total, collected from the workers now."""
        supervisor = self._running_supervisor()
        waiters = [
            handle.send(lambda command_id: GetStats(id=command_id)) if handle.pipe is not None else None
            for handle in supervisor.workers
        ]
        lost = self._records_lost()
        distribution = self._allocation.distribution()
        keys: list[KeyStats] = []
        for handle, waiter in zip(supervisor.workers, waiters):
            reply = None
            if waiter is not None:
                try:
                    reply = waiter.wait(self._request_timeout)
                except WorkerError:
                    pass
            connections = reply.connections if isinstance(reply, StatsReply) else []
            if not isinstance(reply, StatsReply):
                state = "restarting"
            elif handle.key_index in supervisor.failed_keys or any(c.state == "auth_failed" for c in connections):
                state = "auth_failed"
            else:
                state = "running"
            keys.append(
                KeyStats(
                    api_key=handle.key.api_key,
                    key_index=handle.key_index,
                    state=state,
                    worker_alive=handle.alive,
                    worker_restarts=handle.restarts,
                    connected=sum(c.connected for c in connections),
                    instruments=sum(distribution[handle.key_index]),
                    frames=sum(c.frames for c in connections),
                    heartbeats=sum(c.heartbeats for c in connections),
                    bytes=sum(c.bytes for c in connections),
                    ticks=sum(c.ticks for c in connections),
                    parse_errors=sum(c.parse_errors for c in connections),
                    text_messages=sum(c.text_messages for c in connections),
                    ring_position=self._rings[handle.key_index].published,
                    records_lost=lost[handle.key_index],
                    connections=connections,
                    journal_failures=reply.journal_failures if isinstance(reply, StatsReply) else 0,
                )
            )
        return FeedStats.from_keys(keys)

    def _publish_stats(self) -> None:
        # Once a second, for `kitefeed stats` and other processes; errors are logged
        # once per kind so that a stuck worker does not flood the log.
        reported: set[str] = set()
        while not self._board_stop.wait(_BOARD_PERIOD):
            try:
                stats = self.stats()
                if self._board is not None and not self._board.publish(stats) and "size" not in reported:
                    reported.add("size")
                    logger.warning("feed %r: statistics too large for the board; kitefeed stats shows none", self.name)
            except FeedClosedError:
                return
            except Exception as exc:  # noqa: BLE001 - the feed runs on without its board
                if type(exc).__name__ not in reported:
                    reported.add(type(exc).__name__)
                    logger.warning("feed %r: publishing statistics failed: %s", self.name, exc)

    def _records_lost(self) -> list[int]:
        lost = [0] * len(self._keys)
        for reader in list(self._readers):
            for api_key, count in reader.lost_per_key().items():
                lost[self._key_index(api_key)] += count
        return lost

    def poll_events(self) -> list[FeedEvent]:
        """Return and forget the events received since the last call (at most 10,000 are kept)."""
        if self._supervisor is None:
            return []
        return self._supervisor.poll_events()

    def open_reader(
        self,
        *,
        keys: Sequence[str] | None = None,
        start: Literal["oldest", "newest"] = "oldest",
        wait: Wait | str = Wait.SPIN,
        spin_us: float = DEFAULT_SPIN_US,
    ) -> "FeedReader":
        """Open a reader of this feed's rings (all keys, or ``keys``); its losses count in :meth:`stats`.

        The arguments are those of :func:`kitefeed.open_reader`.
        """
        from .reader import open_reader

        self._running_supervisor()
        reader = open_reader(self.name, keys=keys, start=start, wait=wait, spin_us=spin_us)
        self._readers.add(reader)
        return reader


def _parse_mode(mode: Mode | str) -> Mode:
    try:
        return Mode.parse(mode)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
