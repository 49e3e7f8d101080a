"""Settings of the simulator and the limits of the real Kite ticker server that it copies."""

from __future__ import annotations

import dataclasses
import math

from ..errors import InvalidRequestError

__all__ = [
    "ALLOWED_HOSTS",
    "DEMO_CREDENTIALS",
    "MAX_CONNECTIONS_PER_KEY",
    "MAX_INSTRUMENTS_PER_CONNECTION",
    "SimConfig",
]

MAX_CONNECTIONS_PER_KEY = 3
"""Concurrent connections that Kite allows per API key; the next handshake gets HTTP 429."""

MAX_INSTRUMENTS_PER_CONNECTION = 3000
"""Instruments that Kite allows on one connection; excess tokens of a request are rejected."""

ALLOWED_HOSTS = ("127.0.0.1", "::1")
"""Addresses the simulator may listen on: loopback only, because it serves fake market data."""

DEMO_CREDENTIALS = {"kitefeed-demo": "kitefeed-demo-token"}
"""API key and access token that ``kitefeed sim`` accepts when no ``--key`` is given."""


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Validated settings of one simulator. Times are in seconds."""

    host: str = "127.0.0.1"
    port: int = 0
    tick_interval: float = 0.1
    tick_probability: float | None = None
    heartbeat_interval: float = 1.0
    max_connections_per_key: int = MAX_CONNECTIONS_PER_KEY
    max_instruments_per_connection: int = MAX_INSTRUMENTS_PER_CONNECTION
    seed: int = 0
    replay_burst: int = 1

    def __post_init__(self) -> None:
        if self.host not in ALLOWED_HOSTS:
            raise InvalidRequestError(
                f"invalid host {self.host!r}: the simulator listens only on 127.0.0.1 or ::1"
            )
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise InvalidRequestError(f"invalid port {self.port!r}: expected an integer from 0 to 65535 (0 picks a free port)")
        _check_interval("tick_interval", self.tick_interval)
        _check_interval("heartbeat_interval", self.heartbeat_interval)
        if self.tick_probability is not None and not (
            isinstance(self.tick_probability, (int, float)) and 0.0 <= self.tick_probability <= 1.0
        ):
            raise InvalidRequestError(
                f"invalid tick_probability {self.tick_probability!r}: expected a number from 0 to 1"
            )
        _check_positive_int("max_connections_per_key", self.max_connections_per_key)
        _check_positive_int("max_instruments_per_connection", self.max_instruments_per_connection)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidRequestError(f"invalid seed {self.seed!r}: expected a non-negative integer")
        if isinstance(self.replay_burst, bool) or not isinstance(self.replay_burst, int) or not 1 <= self.replay_burst <= 32:
            raise InvalidRequestError(
                f"invalid replay_burst {self.replay_burst!r}: expected an integer from 1 to 32 "
                "(a connection queues at most 64 messages)"
            )

    @property
    def probability(self) -> float:
        """Chance that a subscribed instrument ticks in one push cycle.

        Defaults to ``tick_interval`` seconds divided by one second, capped at 1, so that an
        instrument ticks about once a second as on the real server.
        """
        if self.tick_probability is not None:
            return float(self.tick_probability)
        return min(1.0, self.tick_interval)


def _check_interval(name: str, value: object) -> None:
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not valid:
        raise InvalidRequestError(f"invalid {name} {value!r}: expected a positive number of seconds")


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"invalid {name} {value!r}: expected a positive integer")


def check_credentials(credentials: object) -> dict[str, str]:
    """Return a copy of ``credentials`` (API key to access token) after checking its types."""
    if not hasattr(credentials, "items"):
        raise InvalidRequestError(
            f"invalid credentials of type {type(credentials).__name__}: expected a mapping of api_key to access_token"
        )
    checked: dict[str, str] = {}
    for api_key, token in credentials.items():  # type: ignore[attr-defined]
        check_key_and_token(api_key, token)
        checked[api_key] = token
    return checked


def check_key_and_token(api_key: object, token: object) -> None:
    """Raise :class:`InvalidRequestError` unless both are non-empty strings."""
    if not isinstance(api_key, str) or not api_key:
        raise InvalidRequestError(f"invalid api_key {api_key!r}: expected a non-empty string")
    if not isinstance(token, str) or not token:
        # The token itself is a secret, so the message names only its key.
        raise InvalidRequestError(f"invalid access token for api_key {api_key!r}: expected a non-empty string")
