"""Fault injection methods of :class:`~kitefeed.sim.Simulator`, callable from any thread.

Each public method checks its arguments in the caller's thread, then runs a function of
this module in the server's event loop, where the connections live.
"""

from __future__ import annotations

import asyncio
import http
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from websockets.protocol import State

from ..errors import InvalidRequestError
from .faults import Silence, SlowWrites, check_rejection_status
from .protocol import GARBAGE_KINDS

if TYPE_CHECKING:
    from .server import SimServer

__all__ = ["FaultInjection", "GarbageKind"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

GarbageKind = Literal["truncated", "unknown_length", "count_exceeds_data", "short_packet", "empty_packet"]

_DROP_CODE = 1011
_DROP_REASON = "simulated server failure"


class FaultInjection:
    """Mixin of the fault methods; the Simulator docstring describes each fault."""

    if TYPE_CHECKING:

        def _call(self, function: Callable[..., _T], *args: Any) -> _T: ...

        def _require_server(self) -> SimServer: ...

    def drop_connections(
        self, api_key: str | None = None, *, abrupt: bool = True, connection_id: int | None = None
    ) -> int:
        """Close the open connections of ``api_key`` (every key if None), or only ``connection_id``.

        With ``abrupt`` the TCP connection is reset (RST) without a WebSocket close frame,
        otherwise the server starts the closing handshake with code 1011. Returns how many
        connections it closed.
        """
        _check_scope(api_key, connection_id)
        server = self._require_server()
        return self._call(_drop, server, api_key, connection_id, bool(abrupt))

    def silence(
        self,
        api_key: str | None = None,
        *,
        enabled: bool = True,
        answer_pings: bool = False,
        connection_id: int | None = None,
    ) -> int:
        """Stop (or with ``enabled=False`` resume) every message to the matching connections.

        The connections keep reading and applying requests. Pings get no pong unless
        ``answer_pings``. Returns how many open connections match.
        """
        _check_scope(api_key, connection_id)
        setting = Silence(bool(enabled), bool(answer_pings) and bool(enabled))
        return self._call(_set_rule, self._require_server(), "silence", api_key, connection_id, setting)

    def reject_handshakes(self, api_key: str | None, status: int, count: int | None = None) -> None:
        """Reject the next ``count`` handshakes of ``api_key`` (all while set, if None) with ``status``.

        ``api_key`` None applies to every key. A handshake is rejected before its
        credentials are checked. :meth:`clear_faults` ends it.
        """
        _check_scope(api_key, None)
        checked = check_rejection_status(status)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise InvalidRequestError(f"invalid count {count!r}: expected a positive integer, or None for no limit")
        self._call(_reject, self._require_server(), api_key, checked, count)

    def fragment_messages(
        self, api_key: str | None = None, fragment_size: int | None = None, *, connection_id: int | None = None
    ) -> int:
        """Send binary messages longer than ``fragment_size`` bytes as fragmented messages.

        ``fragment_size`` None turns fragmentation off. Returns how many open connections match.
        """
        _check_scope(api_key, connection_id)
        _check_size("fragment_size", fragment_size)
        return self._call(_set_rule, self._require_server(), "fragment_size", api_key, connection_id, fragment_size)

    def slow_writes(
        self,
        api_key: str | None = None,
        chunk_size: int | None = None,
        delay: float = 0.0,
        *,
        connection_id: int | None = None,
    ) -> int:
        """Write every outgoing frame in TCP writes of ``chunk_size`` bytes, ``delay`` seconds apart.

        ``chunk_size`` None turns slow writes off. Returns how many open connections match.
        """
        _check_scope(api_key, connection_id)
        _check_size("chunk_size", chunk_size)
        valid_delay = isinstance(delay, (int, float)) and not isinstance(delay, bool) and math.isfinite(delay)
        if not valid_delay or delay < 0:
            raise InvalidRequestError(f"invalid delay {delay!r}: expected a non-negative number of seconds")
        setting = None if chunk_size is None else SlowWrites(chunk_size, float(delay))
        return self._call(_set_rule, self._require_server(), "slow_writes", api_key, connection_id, setting)

    def send_garbage(
        self, api_key: str | None = None, kind: GarbageKind | None = None, *, connection_id: int | None = None
    ) -> int:
        """Send one binary message with a damaged packet of ``kind`` to each matching connection.

        Returns the good packets included, summed over the connections.
        """
        _check_scope(api_key, connection_id)
        if kind not in GARBAGE_KINDS:
            raise InvalidRequestError(f"invalid garbage kind {kind!r}: expected one of {', '.join(GARBAGE_KINDS)}")
        return self._call(_send_garbage, self._require_server(), api_key, connection_id, kind)

    def send_snapshot(self, api_key: str | None = None, *, connection_id: int | None = None) -> int:
        """Send each matching connection one message with every subscribed instrument in its mode.

        Returns the packets sent, summed over the connections.
        """
        _check_scope(api_key, connection_id)
        return self._call(_send_snapshot, self._require_server(), api_key, connection_id)

    def clear_faults(self) -> None:
        """Turn every fault off: silence, rejected handshakes, fragmentation and slow writes."""
        self._call(_clear, self._require_server())


# ---- argument checks, in the caller's thread


def _check_scope(api_key: object, connection_id: object) -> None:
    if api_key is not None and (not isinstance(api_key, str) or not api_key):
        raise InvalidRequestError(f"invalid api_key {api_key!r}: expected a non-empty string, or None for every key")
    if connection_id is not None and (
        isinstance(connection_id, bool) or not isinstance(connection_id, int) or connection_id < 1
    ):
        raise InvalidRequestError(
            f"invalid connection_id {connection_id!r}: expected a connection_id from connections(), or None"
        )


def _check_size(name: str, size: object) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise InvalidRequestError(f"invalid {name} {size!r}: expected a positive number of bytes, or None for off")


# ---- work in the server's event loop


def _set_rule(server: SimServer, fault: str, api_key: str | None, connection_id: int | None, value: object) -> int:
    """Set ``fault`` to ``value`` for the scope and apply it to the open connections it covers."""
    matched = server.matching(api_key, connection_id)
    if connection_id is not None:
        if not matched:
            return 0
        scope = (matched[0][1].api_key, connection_id)
    else:
        scope = (api_key, None)
    getattr(server.fault_rules, fault).set(scope, value)

    for connection, session in matched:
        server.fault_rules.apply(connection.faults, session.api_key, session.connection_id)
    logger.info(
        "fault %s set to %s for api_key %s, connection %s (%d open connections)",
        fault, value, api_key or "any", connection_id or "any", len(matched),
    )
    return len(matched)


def _drop(server: SimServer, api_key: str | None, connection_id: int | None, abrupt: bool) -> int:
    dropped = [pair for pair in server.matching(api_key, connection_id) if pair[0].state is State.OPEN]
    for connection, _ in dropped:
        if abrupt and connection.fault_transport is not None:
            connection.fault_transport.reset()
        else:
            task = asyncio.get_running_loop().create_task(connection.close(_DROP_CODE, _DROP_REASON))
            server.closing.add(task)
            task.add_done_callback(server.closing.discard)
    for _, session in dropped:
        logger.info(
            "dropping connection %d of api_key %s (%s)",
            session.connection_id, session.api_key, "TCP reset" if abrupt else f"close code {_DROP_CODE}",
        )
    return len(dropped)


def _reject(server: SimServer, api_key: str | None, status: http.HTTPStatus, count: int | None) -> None:
    server.rejections.set(api_key, status, count)
    logger.info(
        "rejecting %s handshakes of api_key %s with HTTP %d",
        "all" if count is None else f"the next {count}", api_key or "any", status.value,
    )


def _send_garbage(server: SimServer, api_key: str | None, connection_id: int | None, kind: str) -> int:
    return sum(session.send_garbage(kind) for _, session in server.matching(api_key, connection_id))


def _send_snapshot(server: SimServer, api_key: str | None, connection_id: int | None) -> int:
    return sum(session.send_snapshot() for _, session in server.matching(api_key, connection_id))


def _clear(server: SimServer) -> None:
    server.fault_rules.clear()
    server.rejections.clear()
    for connection, session in server.matching():
        server.fault_rules.apply(connection.faults, session.api_key, session.connection_id)
    logger.info("all faults cleared")
