"""The simulator's event-loop side: handshake checks, connections, push cycles and heartbeats.

Everything here runs in one asyncio event loop. :class:`~kitefeed.sim.Simulator` wraps it
for synchronous callers and other threads.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hmac
import http
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from types import MappingProxyType

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from .._logging import quiet_websockets_logger
from .config import SimConfig
from .faults import FaultRules, HandshakeRejections
from .market import Market
from .protocol import rejection_body
from .session import ConnectionInfo, Session
from .stats import HandshakeCounts, SimulatorStats
from .transport import SimConnection

__all__ = ["HandshakeCounts", "SimServer", "SimulatorStats"]

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 2.0  # seconds a client gets to reply to the closing handshake at shutdown


class SimServer:
    """WebSocket server speaking the Kite ticker protocol over a shared :class:`Market`."""

    def __init__(
        self,
        config: SimConfig,
        credentials: dict[str, str],
        credentials_lock: threading.Lock,
        replay: Sequence[bytes] = (),
    ) -> None:
        """``credentials`` (API key to access token) is read under ``credentials_lock`` at each
        handshake, so the owner may change it from any thread while the server runs."""
        self.config = config
        self._credentials = credentials
        self._credentials_lock = credentials_lock
        self._replay = list(replay)
        self._market = Market(config.seed)
        self._rng = np.random.default_rng([config.seed, 1])

        self._sessions: dict[SimConnection, Session] = {}
        self._handshake_keys: dict[ServerConnection, str] = {}
        self._slots: dict[str, set[ServerConnection]] = collections.defaultdict(set)
        self._refused: collections.Counter[int] = collections.Counter()
        self._handshakes: dict[str, HandshakeCounts] = {}
        self._live: collections.Counter[str] = collections.Counter()
        self._max_concurrent: dict[str, int] = {}
        self.fault_rules = FaultRules()
        self.rejections = HandshakeRejections()
        self.closing: set[asyncio.Task[None]] = set()  # closing handshakes started by drop_connections
        self._connections_total = 0
        self._cycles = 0

        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # ---- life cycle

    async def start(self) -> None:
        """Listen on the configured host and port and start the push and heartbeat loops."""
        self.loop = asyncio.get_running_loop()

        # The real server's use of compression is not documented, and without it a push
        # cycle costs less CPU. The server sends no pings but replies to the client's.
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._check_handshake,
            compression=None,
            ping_interval=None,
            close_timeout=_CLOSE_TIMEOUT,
            logger=quiet_websockets_logger("kitefeed.sim.websocket"),
            create_connection=SimConnection,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks = [
            asyncio.create_task(self._every(self.config.tick_interval, self._cycle), name="kitefeed-sim-cycle"),
            asyncio.create_task(self._every(self.config.heartbeat_interval, self._heartbeat), name="kitefeed-sim-heartbeat"),
        ]
        logger.info("simulator listening on %s port %d", self.config.host, self.port)

    async def stop(self) -> None:
        """Stop the loops, close every connection with code 1001 and stop listening."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            await asyncio.gather(*self.closing, return_exceptions=True)
            self._server = None
            logger.info("simulator on port %d stopped", self.port)

    # ---- handshake and connections

    def _count_handshake(self, api_key: str, accepted: bool) -> None:
        counts = self._handshakes.get(api_key, HandshakeCounts())
        self._handshakes[api_key] = HandshakeCounts(
            counts.attempts + 1, counts.accepted + accepted, counts.rejected + (not accepted)
        )

    def _reject(self, connection: ServerConnection, status: http.HTTPStatus, api_key: str) -> Response:
        self._count_handshake(api_key, accepted=False)
        self._refused[status.value] += 1
        logger.info("rejected a connection of api_key %r with HTTP %d", api_key, status.value)
        body = rejection_body(status, self.config.max_connections_per_key).encode()
        headers = Headers(
            [("Connection", "close"), ("Content-Length", str(len(body))), ("Content-Type", "application/json")]
        )
        return Response(status.value, status.phrase, headers, body)

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Accept the handshake (return None) or return the HTTP response that rejects it."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query, keep_blank_values=True)
        api_key = query.get("api_key", [""])[0]
        token = query.get("access_token", [""])[0]
        if not api_key or not token:
            return self._reject(connection, http.HTTPStatus.BAD_REQUEST, api_key)
        injected = self.rejections.take(api_key)
        if injected is not None:
            return self._reject(connection, injected, api_key)

        with self._credentials_lock:
            expected = self._credentials.get(api_key)
        if expected is None or not hmac.compare_digest(expected.encode(), token.encode()):
            return self._reject(connection, http.HTTPStatus.FORBIDDEN, api_key)

        # A slot is taken from here until the connection starts closing. Connections whose
        # handshake failed later on are CLOSED and so no longer count.
        slots = self._slots[api_key]
        slots.difference_update([c for c in slots if c.state not in (State.CONNECTING, State.OPEN)])
        if len(slots) >= self.config.max_connections_per_key:
            return self._reject(connection, http.HTTPStatus.TOO_MANY_REQUESTS, api_key)
        slots.add(connection)
        self._handshake_keys[connection] = api_key
        self._count_handshake(api_key, accepted=True)

        # From here until its TCP connection closes, the connection counts as open.
        self._live[api_key] += 1
        self._max_concurrent[api_key] = max(self._max_concurrent.get(api_key, 0), self._live[api_key])
        assert isinstance(connection, SimConnection)
        connection.on_lost = lambda lost: self._connection_lost(lost, api_key)
        return None

    def _connection_lost(self, connection: SimConnection, api_key: str) -> None:
        self._live[api_key] -= 1
        self._handshake_keys.pop(connection, None)

    async def _handle(self, connection: ServerConnection) -> None:
        """Serve one accepted connection: read requests until it closes, then clean up."""
        assert isinstance(connection, SimConnection)
        api_key = self._handshake_keys.pop(connection)
        self._connections_total += 1
        session = Session(
            self._connections_total,
            api_key,
            self._market,
            max_instruments=self.config.max_instruments_per_connection,
            replay=self._replay,
            faults=connection.faults,
        )
        self.fault_rules.apply(connection.faults, api_key, session.connection_id)
        self._sessions[connection] = session
        writer = asyncio.create_task(self._write(session, connection))
        logger.info("connection %d of api_key %s opened", session.connection_id, api_key)
        try:
            async for message in connection:
                session.handle_message(message)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            session.release()
            del self._sessions[connection]
            self._slots[api_key].discard(connection)
            self.fault_rules.forget_connection(session.connection_id)
            logger.info(
                "connection %d of api_key %s closed with code %s",
                session.connection_id, api_key, connection.close_code,
            )

    async def _write(self, session: Session, connection: SimConnection) -> None:
        # While more messages wait, the socket is corked, so that a burst leaves in full
        # TCP segments as from a busy server, instead of one segment per message.
        sock = connection.transport.get_extra_info("socket") if connection.transport is not None else None
        corked = False

        def cork(on: bool) -> None:
            nonlocal corked
            if sock is None or on == corked:
                return
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(on))
                corked = on
            except OSError:
                pass  # a closing socket; the next write fails anyway

        async def send(message: bytes | str) -> None:
            cork(session.backlog > 0)
            # websockets sends an iterable as one message of one frame per item, followed
            # by an empty final continuation frame.
            size = connection.faults.fragment_size
            if size is not None and isinstance(message, bytes) and len(message) > size:
                view = memoryview(message)
                await connection.send([view[start : start + size] for start in range(0, len(view), size)])
            else:
                await connection.send(message)
            if session.backlog == 0:
                cork(False)

            # Slow writes hold frames in the transport wrapper, which websockets' flow
            # control does not see. Waiting here keeps the session's outbox limit in force.
            if connection.fault_transport is not None:
                await connection.fault_transport.wait_flushed()

        try:
            await session.write(send)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("connection %d: sending failed; closing it", session.connection_id)
            await connection.close(1011, "simulator error")

    # ---- periodic work

    async def _every(self, interval: float, step: Callable[[], None]) -> None:
        """Call ``step`` every ``interval`` seconds; after a stall, skip the missed calls."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if loop.time() - deadline > interval:
                deadline = loop.time()
            try:
                step()
            except Exception:
                logger.exception("simulator step %s failed; continuing", step.__name__)

    def _cycle(self) -> None:
        """Run one push cycle: move the instruments that tick, queue a frame per connection."""
        self._cycles += 1
        market = self._market
        ticked = np.zeros(len(market), dtype=bool)
        active = np.flatnonzero(market.subscribers > 0)
        if active.size:
            chosen = active[self._rng.random(active.size) < self.config.probability]
            market.advance(chosen)
            ticked[chosen] = True
        for session in self._sessions.values():
            session.push(ticked)
            for _ in range(self.config.replay_burst):
                session.push_replay()

    def _heartbeat(self) -> None:
        for session in self._sessions.values():
            session.send_heartbeat()

    # ---- calls from the Simulator, made in this loop

    def send_text(self, api_key: str, text: str) -> int:
        """Queue ``text`` on every open connection of ``api_key``; return how many there are."""
        sessions = [s for s in self._sessions.values() if s.api_key == api_key]
        for session in sessions:
            session.send_text(text)
        return len(sessions)

    def connections(self, api_key: str | None = None) -> list[ConnectionInfo]:
        """Return a snapshot of the open connections, of ``api_key`` only if given, oldest first."""
        infos = []
        for connection, session in self.matching(api_key):
            info = session.info()
            transport = connection.fault_transport
            if transport is not None:
                info = dataclasses.replace(info, socket_writes=transport.writes, pongs_dropped=transport.pongs_dropped)
            infos.append(info)
        return infos

    def matching(self, api_key: str | None = None, connection_id: int | None = None) -> list[tuple[SimConnection, Session]]:
        """Return the open connections of ``api_key`` (any if None) and ``connection_id`` (any if None), oldest first."""
        pairs = [
            (connection, session)
            for connection, session in self._sessions.items()
            if (api_key is None or session.api_key == api_key)
            and (connection_id is None or session.connection_id == connection_id)
        ]
        return sorted(pairs, key=lambda pair: pair[1].connection_id)

    def refused(self) -> dict[int, int]:
        return dict(self._refused)

    def packets_sent(self) -> dict[int, int]:
        """Return the packets queued per token over all connections, for tokens with any."""
        sent = self._market.packets_sent
        rows = np.flatnonzero(sent)
        tokens = self._market.state["instrument_token"][rows]
        return dict(zip(tokens.tolist(), sent[rows].tolist()))

    def stats(self) -> SimulatorStats:
        return SimulatorStats(
            connections_open=len(self._sessions),
            connections_total=self._connections_total,
            refused=MappingProxyType(dict(self._refused)),
            cycles=self._cycles,
            instruments=len(self._market),
            packets_sent=int(self._market.packets_sent.sum()),
            max_concurrent=MappingProxyType(dict(self._max_concurrent)),
            handshakes=MappingProxyType(dict(self._handshakes)),
        )
