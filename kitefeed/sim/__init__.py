"""A Kite-protocol WebSocket server for tests, the demo and benchmarks.

:class:`Simulator` serves Kite's ticker protocol on the loopback interface. It checks the
handshake's ``api_key`` and ``access_token`` and enforces 3 connections per key and 3000
instruments per connection. It streams a random walk of every subscribed instrument and
sends heartbeats, text messages and replayed frames. Tests can inject network and server
faults: dropped, silenced, fragmented or slow connections, rejected handshakes and
damaged messages.
"""

from .config import DEMO_CREDENTIALS, MAX_CONNECTIONS_PER_KEY, MAX_INSTRUMENTS_PER_CONNECTION
from .replay import frame_from_packet, load_replay
from .injection import GarbageKind
from .server import HandshakeCounts, SimulatorStats
from .session import ConnectionInfo
from .simulator import Simulator

__all__ = [
    "DEMO_CREDENTIALS",
    "MAX_CONNECTIONS_PER_KEY",
    "MAX_INSTRUMENTS_PER_CONNECTION",
    "ConnectionInfo",
    "GarbageKind",
    "HandshakeCounts",
    "Simulator",
    "SimulatorStats",
    "frame_from_packet",
    "load_replay",
]
