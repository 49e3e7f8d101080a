"""The public :class:`Simulator`: a Kite ticker server for synchronous and asyncio callers."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import orjson

from ..errors import FeedStateError, InvalidRequestError
from .config import SimConfig, check_credentials, check_key_and_token
from .injection import FaultInjection
from .server import SimServer, SimulatorStats
from .session import ConnectionInfo

__all__ = ["Simulator"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_THREAD_TIMEOUT = 15.0  # seconds to wait for the server thread to start or to stop
_CALL_TIMEOUT = 5.0  # seconds to wait for a call that runs in the server's event loop


class Simulator(FaultInjection):
    """A simulator of Kite's ticker WebSocket server on 127.0.0.1 or ::1.

    ``credentials`` maps each accepted API key to its access token. Use it from synchronous
    code as ``with Simulator(...) as sim:`` (the server then runs in a background thread
    with its own event loop) or from asyncio code as ``async with Simulator(...) as sim:``.

    Every ``tick_interval`` seconds a push cycle picks each subscribed instrument with
    probability ``tick_probability``. The default is ``tick_interval`` / 1 s, so that an
    instrument ticks about once a second. The cycle moves the picked instruments by a random
    walk and sends each connection one frame with those it subscribes. When ``replay``
    messages are given, each connection also gets the next ``replay_burst`` of them every
    cycle (one by default), whatever it subscribes, going back to the first after the last.
    A burst arrives back to back, as messages do from a busy server. The random walk goes
    on as well.

    Client requests that are not valid JSON, have an unknown action or mode, or another
    shape are ignored without a reply, as the real server is believed to do.

    Faults can be injected from any thread while connections are open. Each applies to
    the connections of ``api_key``, or of every key when it is None, and with
    ``connection_id`` (from :meth:`connections`) to that one connection only:

    - :meth:`drop_connections` closes connections now. ``abrupt=True`` resets the TCP
      connection (RST) without a close frame; ``abrupt=False`` sends close code 1011.
    - :meth:`silence` makes connections send nothing at all (no ticks, heartbeats or
      text, and no pongs unless ``answer_pings``) while the TCP connection stays open
      and requests are still read and applied. Messages due meanwhile are discarded and
      counted in ``ConnectionInfo.silenced``. A close frame still goes out, so stopping
      the simulator or :meth:`drop_connections` works as usual. For a key or every key,
      it also covers connections opened later, until ``enabled=False``.
    - :meth:`reject_handshakes` answers the next ``count`` handshakes of a key (all while
      set, if None) with an HTTP status such as 403, 429, 500 or 503, before the
      credentials are checked.
    - :meth:`fragment_messages` sends each binary message longer than ``fragment_size``
      as a fragmented message: frames of ``fragment_size`` bytes, the last one possibly
      shorter, then an empty final continuation frame, as websockets sends fragments.
    - :meth:`slow_writes` writes every outgoing frame to the socket in chunks of
      ``chunk_size`` bytes, each a separate write with TCP_NODELAY, ``delay`` seconds
      apart, so a client reassembles a large message from many reads.
    - :meth:`send_garbage` sends one binary message with a damaged packet (see
      :func:`~kitefeed.sim.protocol.damaged_message`) and the packets of up to 3
      subscribed instruments, and returns the number of those good packets.
    - :meth:`send_snapshot` sends one message with every subscribed instrument in its
      mode; 3,000 full-mode instruments make a message of 558,002 bytes.

    A later call for the same fault replaces the earlier ones for the connections it
    covers. :meth:`clear_faults` turns every fault off. ``stats()`` counts handshakes and
    the highest number of concurrent connections per key.
    """

    def __init__(
        self,
        credentials: Mapping[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_interval: float = 0.1,
        tick_probability: float | None = None,
        heartbeat_interval: float = 1.0,
        max_connections_per_key: int = 3,
        max_instruments_per_connection: int = 3000,
        seed: int = 0,
        replay: Sequence[bytes] | None = None,
        replay_burst: int = 1,
    ) -> None:
        self._config = SimConfig(
            host=host,
            port=port,
            tick_interval=tick_interval,
            tick_probability=tick_probability,
            heartbeat_interval=heartbeat_interval,
            max_connections_per_key=max_connections_per_key,
            max_instruments_per_connection=max_instruments_per_connection,
            seed=seed,
            replay_burst=replay_burst,
        )
        self._credentials = check_credentials(credentials)
        self._credentials_lock = threading.Lock()  # shared with the server, which reads it per handshake
        self._replay = [_check_message(message, index) for index, message in enumerate(replay or ())]
        self._server: SimServer | None = None
        self._running = False
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread_error: BaseException | None = None

    # ---- life cycle from asyncio code

    async def start_async(self) -> None:
        """Start serving in the running event loop. Raises FeedStateError if already started."""
        if self._server is not None and self._running:
            raise FeedStateError("the simulator is already running; stop it before starting it again")
        server = SimServer(self._config, self._credentials, self._credentials_lock, self._replay)
        await server.start()
        self._server, self._running = server, True

    async def stop_async(self) -> None:
        """Close every connection and stop listening. Does nothing if not running."""
        if self._server is None or not self._running:
            return
        try:
            await self._server.stop()
        finally:
            self._running = False

    async def __aenter__(self) -> Simulator:
        await self.start_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_async()

    # ---- life cycle from synchronous code

    def start(self) -> None:
        """Start serving in a background thread with its own event loop; return once it listens."""
        if self._thread is not None or self._running:
            raise FeedStateError("the simulator is already running; stop it before starting it again")
        ready = threading.Event()
        self._thread_error = None
        self._thread = threading.Thread(target=self._run_thread, args=(ready,), name="kitefeed-sim", daemon=True)
        self._thread.start()
        if not ready.wait(_THREAD_TIMEOUT):
            raise FeedStateError(f"the simulator thread did not start within {_THREAD_TIMEOUT} s")
        if self._thread_error is not None:
            self._thread.join(_THREAD_TIMEOUT)
            self._thread = None
            raise self._thread_error

    def stop(self) -> None:
        """Stop the server and its thread. Does nothing if not started with :meth:`start`."""
        thread, server, stop_event = self._thread, self._server, self._stop_event
        if thread is None:
            return
        if server is not None and server.loop is not None and stop_event is not None and not server.loop.is_closed():
            try:
                server.loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:
                pass  # the loop already closed after a failure; the thread is ending
        thread.join(_THREAD_TIMEOUT)
        if thread.is_alive():
            raise FeedStateError(f"the simulator thread did not stop within {_THREAD_TIMEOUT} s")
        self._thread = None

    def _run_thread(self, ready: threading.Event) -> None:
        asyncio.run(self._serve_until_stopped(ready))

    async def _serve_until_stopped(self, ready: threading.Event) -> None:
        self._stop_event = asyncio.Event()
        try:
            await self.start_async()
        except BaseException as exc:
            self._thread_error = exc
            ready.set()
            return
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await self.stop_async()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ---- properties and calls, from any thread

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._running

    @property
    def port(self) -> int:
        """TCP port the server listens on; raises FeedStateError before the first start."""
        return self._require_server().port

    @property
    def url(self) -> str:
        """WebSocket URL of the server without a query, e.g. ``ws://127.0.0.1:8765``."""
        host = self._config.host
        bracketed = f"[{host}]" if ":" in host else host
        return f"ws://{bracketed}:{self.port}"

    def set_token(self, api_key: str, token: str) -> None:
        """Make ``token`` the only access token of ``api_key`` (adding the key if new).

        New handshakes with the old token get HTTP 403; open connections stay open.
        """
        check_key_and_token(api_key, token)
        with self._credentials_lock:
            self._credentials[api_key] = token

    def send_text(self, api_key: str, message: Mapping[str, Any]) -> int:
        """Send ``message`` as a JSON text message to every open connection of ``api_key``.

        Returns the number of connections it was queued on. Raises InvalidRequestError for
        an unknown key or a message that is not a JSON-serialisable mapping.
        """
        server = self._require_server()
        with self._credentials_lock:
            known = api_key in self._credentials
        if not known:
            raise InvalidRequestError(f"unknown api_key {api_key!r}: add it with set_token() first")
        if not isinstance(message, Mapping):
            raise InvalidRequestError(f"invalid message of type {type(message).__name__}: expected a mapping")
        try:
            text = orjson.dumps(dict(message)).decode()
        except TypeError as exc:
            raise InvalidRequestError(f"message is not JSON-serialisable: {exc}") from exc
        return self._call(server.send_text, api_key, text)

    def connections(self, api_key: str | None = None) -> list[ConnectionInfo]:
        """Return a snapshot of the open connections (of ``api_key`` only, if given), oldest first."""
        if not self._running:
            return []
        server = self._require_server()
        return self._call(server.connections, api_key)

    @property
    def refused(self) -> dict[int, int]:
        """Rejected handshakes per HTTP status (400, 403, 429), a snapshot."""
        if self._server is None:
            return {}
        return self._call(self._server.refused)

    @property
    def packets_sent(self) -> dict[int, int]:
        """Packets queued per instrument token over all connections, a snapshot."""
        if self._server is None:
            return {}
        return self._call(self._server.packets_sent)

    def stats(self) -> SimulatorStats:
        """Return counters since the last start."""
        return self._call(self._require_server().stats)

    def _require_server(self) -> SimServer:
        if self._server is None:
            raise FeedStateError("the simulator has not been started; use it in a with block or call start()")
        return self._server

    def _call(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function`` in the server's event loop and return its result.

        The server's state belongs to its loop, so a call from another thread is scheduled
        there and waited for. A call from the loop itself, or after stop, runs directly.
        """
        loop = self._require_server().loop
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if loop is None or current is loop or not self._running or loop.is_closed():
            return function(*args)

        async def run() -> _T:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(_CALL_TIMEOUT)


def _check_message(message: object, index: int) -> bytes:
    if not isinstance(message, (bytes, bytearray, memoryview)) or len(message) == 0:
        raise InvalidRequestError(f"invalid replay message at index {index}: expected non-empty bytes")
    return bytes(message)
