"""Fault settings of the simulator: which connections are silenced, fragmented or slowed.

A fault is set for one of three scopes: every connection, the connections of one API key,
or one connection. A connection follows the most specific rule that matches it, and a new
rule removes the narrower rules it covers, so the last call wins for every connection it
matches. Rules for every connection or for a key also apply to connections opened later.

Nothing here does I/O. The server resolves the rules into a :class:`ConnectionFaults`
per connection, which its session and its transport read before each write.
"""

from __future__ import annotations

import dataclasses
import http
from typing import Generic, TypeVar

from ..errors import InvalidRequestError

__all__ = [
    "ConnectionFaults",
    "FaultRules",
    "HandshakeRejections",
    "Silence",
    "SlowWrites",
    "check_rejection_status",
]

_V = TypeVar("_V")


@dataclasses.dataclass(frozen=True)
class Silence:
    """Setting of the silence fault; ``answer_pings`` is read only while ``enabled``."""

    enabled: bool = False
    answer_pings: bool = False


@dataclasses.dataclass(frozen=True)
class SlowWrites:
    """Setting of the slow-writes fault: chunks of ``chunk_size`` bytes, ``delay`` seconds apart."""

    chunk_size: int
    delay: float = 0.0


@dataclasses.dataclass
class ConnectionFaults:
    """Faults in effect on one connection; the server updates the fields in place.

    The connection's session and transport share one instance and read it before each
    write, so a change applies from the next message or frame on.
    """

    silence: Silence = Silence()
    fragment_size: int | None = None
    slow_writes: SlowWrites | None = None

    @property
    def drops_pongs(self) -> bool:
        """Whether pong frames are dropped: while silenced without ``answer_pings``."""
        return self.silence.enabled and not self.silence.answer_pings


Scope = tuple[str | None, int | None]
"""(api_key, connection_id) of a rule; None matches every key or every connection."""


def _covers(wide: Scope, narrow: Scope) -> bool:
    return (wide[0] is None or wide[0] == narrow[0]) and (wide[1] is None or wide[1] == narrow[1])


class _Rules(Generic[_V]):
    """Rules of one fault by scope. A connection rule stores the connection's real key."""

    def __init__(self, default: _V) -> None:
        self.default = default
        self._by_scope: dict[Scope, _V] = {}

    def set(self, scope: Scope, value: _V) -> None:
        for existing in [s for s in self._by_scope if _covers(scope, s)]:
            del self._by_scope[existing]
        if scope != (None, None) or value != self.default:
            self._by_scope[scope] = value

    def resolve(self, api_key: str, connection_id: int) -> _V:
        for scope in ((api_key, connection_id), (api_key, None), (None, None)):
            if scope in self._by_scope:
                return self._by_scope[scope]
        return self.default

    def forget_connection(self, connection_id: int) -> None:
        for scope in [s for s in self._by_scope if s[1] == connection_id]:
            del self._by_scope[scope]

    def clear(self) -> None:
        self._by_scope.clear()


class FaultRules:
    """Rules of the silence, fragmentation and slow-writes faults; used from one event loop."""

    def __init__(self) -> None:
        self.silence: _Rules[Silence] = _Rules(Silence())
        self.fragment_size: _Rules[int | None] = _Rules(None)
        self.slow_writes: _Rules[SlowWrites | None] = _Rules(None)

    def apply(self, faults: ConnectionFaults, api_key: str, connection_id: int) -> None:
        """Set ``faults`` to what the rules give for the connection ``connection_id`` of ``api_key``."""
        faults.silence = self.silence.resolve(api_key, connection_id)
        faults.fragment_size = self.fragment_size.resolve(api_key, connection_id)
        faults.slow_writes = self.slow_writes.resolve(api_key, connection_id)

    def forget_connection(self, connection_id: int) -> None:
        """Drop the rules of a closed connection."""
        for rules in (self.silence, self.fragment_size, self.slow_writes):
            rules.forget_connection(connection_id)

    def clear(self) -> None:
        for rules in (self.silence, self.fragment_size, self.slow_writes):
            rules.clear()


@dataclasses.dataclass
class _Rejection:
    status: http.HTTPStatus
    remaining: int | None  # None rejects until cleared


class HandshakeRejections:
    """Statuses that the next handshakes of a key, or of any key, get instead of being checked."""

    def __init__(self) -> None:
        self._by_key: dict[str | None, _Rejection] = {}

    def set(self, api_key: str | None, status: http.HTTPStatus, count: int | None) -> None:
        """Reject the next ``count`` handshakes of ``api_key`` (None: of any key) with ``status``.

        A rule for every key replaces the rules of single keys.
        """
        if api_key is None:
            self._by_key.clear()
        self._by_key[api_key] = _Rejection(status, count)

    def take(self, api_key: str) -> http.HTTPStatus | None:
        """Return the status for a handshake of ``api_key`` now, using up one of its count, or None."""
        for scope in (api_key, None):
            rejection = self._by_key.get(scope)
            if rejection is None:
                continue
            if rejection.remaining is not None:
                rejection.remaining -= 1
                if rejection.remaining == 0:
                    del self._by_key[scope]
            return rejection.status
        return None

    def clear(self) -> None:
        self._by_key.clear()


def check_rejection_status(status: object) -> http.HTTPStatus:
    """Return ``status`` as an HTTPStatus if it is a known client or server error status (400-599)."""
    valid = isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599
    if valid:
        try:
            return http.HTTPStatus(status)
        except ValueError:
            pass
    raise InvalidRequestError(
        f"invalid status {status!r}: expected an HTTP error status from 400 to 599 that http.HTTPStatus knows"
    )
