"""Counters that :meth:`~kitefeed.sim.Simulator.stats` returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["HandshakeCounts", "SimulatorStats"]


@dataclasses.dataclass(frozen=True)
class HandshakeCounts:
    """Handshakes of one API key: ``attempts`` is ``accepted`` plus ``rejected``."""

    attempts: int = 0
    accepted: int = 0
    rejected: int = 0


@dataclasses.dataclass(frozen=True)
class SimulatorStats:
    """Counters of a simulator since it started.

    ``max_concurrent`` is the highest number of connections of each API key that were open
    at the same time. A connection counts from its accepted handshake until its TCP
    connection has closed, so one that is still closing counts too. ``handshakes`` counts
    handshakes per API key as given in the request; a request without one counts under "".
    """

    connections_open: int
    connections_total: int  # connections accepted
    refused: Mapping[int, int]  # rejected handshakes per HTTP status
    cycles: int  # push cycles run
    instruments: int  # distinct tokens ever subscribed
    packets_sent: int  # packets queued over all connections
    max_concurrent: Mapping[str, int] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    handshakes: Mapping[str, HandshakeCounts] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
