"""Connection faults: dropped and silenced connections, rejected handshakes, concurrency counts."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.protocol import State

from kitefeed.errors import FeedStateError, InvalidRequestError
from kitefeed.sim import HandshakeCounts, Simulator

from .client import (
    CREDENTIALS,
    KEY,
    NSE_TOKEN,
    OTHER_KEY,
    OTHER_TOKEN,
    WAIT,
    handshake_status,
    open_client,
    receive_for,
    receive_until,
    run,
    send_json,
    url,
    wait_for_state,
)

HEARTBEAT = b"\x00"


async def _closed_error(ws: object) -> ConnectionClosed:
    """Receive until the connection closes and return the exception; fail after WAIT seconds."""
    async with asyncio.timeout(WAIT):
        try:
            while True:
                await ws.recv()  # type: ignore[attr-defined]
        except ConnectionClosed as exc:
            return exc


def _info(sim: Simulator, key: str = KEY, index: int = 0) -> object:
    return sim.connections(key)[index]


def test_abrupt_drop_resets_without_close_frame(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws, open_client(sim, OTHER_KEY, OTHER_TOKEN) as other:
            await receive_until(ws, lambda m: m == HEARTBEAT)
            assert sim.drop_connections(KEY) == 1

            closed = await _closed_error(ws)
            assert isinstance(closed, ConnectionClosedError)
            assert closed.rcvd is None
            assert isinstance(closed.__cause__, ConnectionResetError)

            await receive_until(other, lambda m: m == HEARTBEAT)
            await wait_for_state(lambda: sim.connections(KEY) == [])
            assert len(sim.connections(OTHER_KEY)) == 1

    run(main())


def test_graceful_drop_sends_close_1011(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await wait_for_state(lambda: len(sim.connections(KEY)) == 1)
            assert sim.drop_connections(abrupt=False) == 1

            closed = await _closed_error(ws)
            assert closed.rcvd is not None
            assert closed.rcvd.code == 1011

    run(main())


def test_drop_one_connection_by_id(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as first, open_client(sim) as second:
            await wait_for_state(lambda: len(sim.connections(KEY)) == 2)
            target = sim.connections(KEY)[1].connection_id
            assert sim.drop_connections(KEY, connection_id=target) == 1
            assert sim.drop_connections(OTHER_KEY, connection_id=target) == 0

            await _closed_error(second)
            await receive_until(first, lambda m: m == HEARTBEAT)
            await wait_for_state(lambda: target not in [c.connection_id for c in sim.connections(KEY)])

    run(main())


def test_silence_stops_everything_until_disabled(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await receive_until(ws, lambda m: m == HEARTBEAT)
            assert sim.silence(KEY) == 1

            # While silenced, heartbeats are discarded on the server and pings get no pong.
            pong = await ws.ping()
            await wait_for_state(lambda: _info(sim).pongs_dropped == 1 and _info(sim).silenced >= 3)
            before = _info(sim)

            # Requests are still read and applied, but their snapshot is not sent.
            await send_json(ws, "subscribe", [NSE_TOKEN])
            await wait_for_state(lambda: _info(sim).subscribed == 1 and _info(sim).silenced >= before.silenced + 3)
            during = _info(sim)
            assert during.heartbeats_sent == before.heartbeats_sent
            assert during.frames_sent == before.frames_sent

            # The client got exactly what was sent before the silence, and the TCP
            # connection is still open.
            received = await receive_for(ws, 0.3)
            assert not pong.done()
            assert ws.state is State.OPEN
            assert all(m == HEARTBEAT for m in received)

            assert sim.silence(KEY, enabled=False) == 1
            await receive_until(ws, lambda m: m == HEARTBEAT)
            await asyncio.wait_for(await ws.ping(), WAIT)

    run(main())


def test_silence_covers_later_connections(sim: Simulator) -> None:
    async def main() -> None:
        assert sim.silence(KEY, answer_pings=True) == 0
        async with open_client(sim) as ws, open_client(sim, OTHER_KEY, OTHER_TOKEN) as other:
            await receive_until(other, lambda m: m == HEARTBEAT)
            await wait_for_state(lambda: _info(sim).silenced >= 3)

            # answer_pings keeps pongs going while everything else stops.
            await asyncio.wait_for(await ws.ping(), WAIT)
            assert await receive_for(ws, 0.3) == []
            assert _info(sim).heartbeats_sent == 0

    run(main())


def test_silence_key_override_of_all_keys(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws, open_client(sim, OTHER_KEY, OTHER_TOKEN):
            assert sim.silence() == 2
            assert sim.silence(KEY, enabled=False) == 1
            await receive_until(ws, lambda m: m == HEARTBEAT)
            silenced = _info(sim, KEY).silenced
            other_silenced = _info(sim, OTHER_KEY).silenced
            await wait_for_state(lambda: _info(sim, OTHER_KEY).silenced >= other_silenced + 3)
            assert _info(sim, KEY).silenced == silenced

    run(main())


def test_reject_handshakes_with_count(sim: Simulator) -> None:
    sim.reject_handshakes(KEY, 503, count=2)

    async def main() -> None:
        try:
            async with connect(url(sim), open_timeout=WAIT):
                raise AssertionError("handshake succeeded during an injected rejection")
        except InvalidStatus as exc:
            response = exc.response
        assert response.status_code == 503
        assert json.loads(bytes(response.body))["error_type"] == "NetworkException"

        assert await handshake_status(url(sim, OTHER_KEY, OTHER_TOKEN)) == 101
        assert await handshake_status(url(sim)) == 503
        assert await handshake_status(url(sim)) == 101

    run(main())
    stats = sim.stats()
    assert stats.handshakes[KEY] == HandshakeCounts(attempts=3, accepted=1, rejected=2)
    assert stats.handshakes[OTHER_KEY] == HandshakeCounts(attempts=1, accepted=1, rejected=0)
    assert sim.refused == {503: 2}


def test_reject_handshakes_until_cleared(sim: Simulator) -> None:
    sim.reject_handshakes(None, 429)

    async def main() -> None:
        for _ in range(4):
            assert await handshake_status(url(sim)) == 429
        assert await handshake_status(url(sim, OTHER_KEY, OTHER_TOKEN)) == 429
        sim.clear_faults()
        assert await handshake_status(url(sim)) == 101

    run(main())
    assert sim.stats().handshakes[KEY] == HandshakeCounts(attempts=5, accepted=1, rejected=4)


def test_reject_handshakes_before_credentials(sim: Simulator) -> None:
    sim.reject_handshakes("unknown-key", 500, count=1)
    assert run(handshake_status(url(sim, "unknown-key", "any"))) == 500
    assert run(handshake_status(url(sim, "unknown-key", "any"))) == 403


def test_max_concurrent_per_key(sim: Simulator) -> None:
    async def main() -> None:
        clients = [await open_client(sim) for _ in range(3)]
        try:
            assert await handshake_status(url(sim)) == 429
        finally:
            for client in clients:
                await client.close()
        await wait_for_state(lambda: sim.connections(KEY) == [])
        async with open_client(sim), open_client(sim, OTHER_KEY, OTHER_TOKEN):
            await wait_for_state(lambda: len(sim.connections()) == 2)

    run(main())
    stats = sim.stats()
    assert stats.max_concurrent == {KEY: 3, OTHER_KEY: 1}
    assert stats.handshakes[KEY] == HandshakeCounts(attempts=5, accepted=4, rejected=1)


def test_clear_faults_restores_normal_service(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await wait_for_state(lambda: len(sim.connections(KEY)) == 1)
            sim.silence()
            sim.fragment_messages(KEY, 16)
            sim.slow_writes(KEY, 3, 0.001)
            sim.reject_handshakes(KEY, 403)
            sim.clear_faults()

            assert await handshake_status(url(sim)) == 101
            await send_json(ws, "subscribe", [NSE_TOKEN])
            await receive_until(ws, lambda m: m == HEARTBEAT)
            assert _info(sim).silenced == 0

    run(main())


@pytest.mark.parametrize(
    "call",
    [
        lambda sim: sim.drop_connections(""),
        lambda sim: sim.silence(KEY, connection_id=0),
        lambda sim: sim.reject_handshakes(KEY, 200),
        lambda sim: sim.reject_handshakes(KEY, 600),
        lambda sim: sim.reject_handshakes(KEY, True),
        lambda sim: sim.reject_handshakes(KEY, 503, count=0),
        lambda sim: sim.fragment_messages(KEY, 0),
        lambda sim: sim.slow_writes(KEY, -1),
        lambda sim: sim.slow_writes(KEY, 10, float("nan")),
        lambda sim: sim.slow_writes(KEY, 10, -0.5),
        lambda sim: sim.send_garbage(KEY, "bogus"),
        lambda sim: sim.send_garbage(KEY),
    ],
)
def test_invalid_fault_arguments_raise(sim: Simulator, call: object) -> None:
    with pytest.raises(InvalidRequestError):
        call(sim)  # type: ignore[operator]


def test_faults_before_start_raise() -> None:
    with pytest.raises(FeedStateError):
        Simulator(CREDENTIALS).silence()
