"""The simulator in a child process, so that its CPU time stays out of the feed's and the reader's.

The end-to-end benchmarks start :func:`serve` with the "spawn" method and talk to it
over a control pipe: it sends its port once it listens, then replies to each command.
"""

from __future__ import annotations

import os
from multiprocessing.connection import Connection

import msgspec

from kitefeed.parsers import encode_frame
from kitefeed.sim import Simulator

from .procstat import process_cpu_seconds
from .ticks import make_ticks

CHILD_SECONDS = 900.0
"""Time the simulator waits for its next command before it gives up and exits."""

SEED = 20_240_611
"""Seed of the simulator's random walk."""


class SimCounters(msgspec.Struct, frozen=True):
    """Counters summed over the simulator's open connections, and its own CPU time."""

    connections: int
    """Open connections."""
    subscribed: int
    """Instruments subscribed, summed over connections."""
    packets: int
    """Tick packets of the random walk and of snapshots queued for sending; replayed ones are not counted."""
    frames: int
    """Binary messages with ticks handed to the WebSocket connections, replayed ones included."""
    dropped: int
    """Messages dropped because a connection's queue was full: the client read too slowly."""
    cpu_seconds: float
    """User plus system CPU time of the simulator's process so far."""


def bench_tokens(count: int) -> list[int]:
    """Return ``count`` instrument tokens of NSE equities (segment 1), which carry every full-mode field."""
    return [((100_000 + number) << 8) | 1 for number in range(count)]


def replay_message(packets: int) -> bytes:
    """Return one binary message of ``packets`` full-mode ticks of NSE equities, tokens 1 to ``packets``."""
    return encode_frame(make_ticks(packets))


def serve(control: Connection, credentials: dict[str, str], tick_interval: float, replay_packets: int = 0) -> None:
    """Run a simulator that pushes a cycle of ticks every ``tick_interval`` seconds.

    With ``replay_packets`` 0, every cycle ticks every subscribed instrument (the random
    walk, encoded anew each cycle). Otherwise no subscribed instrument ticks after the
    snapshot that follows its subscription, and every cycle sends each connection the
    same prepared message of ``replay_packets`` full-mode ticks, which costs the
    simulator little more than the socket writes.

    Sends the port on ``control``, then replies to "counters" with a :class:`SimCounters`
    (msgspec-encoded) until it receives None, the pipe closes, or no command comes for
    :data:`CHILD_SECONDS`.
    """
    replay = [replay_message(replay_packets)] if replay_packets else None
    simulator = Simulator(
        credentials,
        tick_interval=tick_interval,
        tick_probability=0.0 if replay else 1.0,
        heartbeat_interval=1.0,
        seed=SEED,
        replay=replay,
    )
    with simulator:
        control.send(simulator.port)
        while control.poll(CHILD_SECONDS):
            try:
                command = control.recv()
            except EOFError:
                return
            if command != "counters":
                return
            control.send_bytes(msgspec.msgpack.encode(counters(simulator)))


def counters(simulator: Simulator) -> SimCounters:
    """Return the counters of ``simulator`` now; call it in the simulator's process."""
    infos = simulator.connections()
    return SimCounters(
        connections=len(infos),
        subscribed=sum(info.subscribed for info in infos),
        packets=sum(info.packets_sent for info in infos),
        frames=sum(info.frames_sent for info in infos),
        dropped=sum(info.dropped for info in infos),
        cpu_seconds=process_cpu_seconds(os.getpid()),
    )


def request_counters(control: Connection, timeout: float = 30.0) -> SimCounters:
    """Ask the simulator process behind ``control`` for its counters and return them."""
    control.send("counters")
    if not control.poll(timeout):
        raise TimeoutError(f"the simulator process did not send its counters within {timeout} s")
    return msgspec.msgpack.decode(control.recv_bytes(), type=SimCounters)
