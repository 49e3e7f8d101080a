"""Starting and stopping: sync and asyncio use, configuration checks, no leaked threads or fds."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import pytest
from websockets.exceptions import ConnectionClosed

from kitefeed.errors import FeedStateError, InvalidRequestError
from kitefeed.sim import Simulator

from .client import CREDENTIALS, KEY, NSE_TOKEN, TOKEN, handshake_status, open_client, receive_until, run, send_json, url


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_stop_leaves_no_thread_or_fd() -> None:
    threads, fds = threading.active_count(), _open_fds()

    async def main(sim: Simulator) -> None:
        clients = [await open_client(sim) for _ in range(3)]
        for client in clients:
            await send_json(client, "subscribe", [NSE_TOKEN])
        # Clients must keep reading while the server closes them, so stop in another thread.
        stopping = asyncio.create_task(asyncio.to_thread(sim.stop))
        for client in clients:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await client.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
        await stopping

    sim = Simulator(CREDENTIALS, tick_interval=0.02)
    sim.start()
    try:
        run(main(sim))
    finally:
        sim.stop()
    assert threading.active_count() == threads
    assert _open_fds() == fds


def test_async_with_runs_in_caller_loop() -> None:
    threads = threading.active_count()

    async def main() -> None:
        async with Simulator(CREDENTIALS, tick_interval=0.02) as sim:
            assert threading.active_count() == threads
            assert sim.running
            async with open_client(sim) as ws:
                await send_json(ws, "subscribe", [NSE_TOKEN])
                await receive_until(ws, lambda m: isinstance(m, bytes) and len(m) > 1)
                assert sim.connections()[0].subscribed == 1
                assert sim.send_text(KEY, {"type": "message", "data": "hello"}) == 1
        assert not sim.running

    run(main())


def test_start_async_and_stop_async() -> None:
    async def main() -> None:
        sim = Simulator(CREDENTIALS)
        await sim.start_async()
        try:
            with pytest.raises(FeedStateError, match="already running"):
                await sim.start_async()
            assert await handshake_status(url(sim)) == 101
        finally:
            await sim.stop_async()
        await sim.stop_async()
        assert sim.refused == {}
        assert sim.connections() == []

    run(main())


def test_restart_after_stop() -> None:
    sim = Simulator(CREDENTIALS)
    for _ in range(2):
        with sim:
            assert run(handshake_status(url(sim))) == 101
            assert sim.stats().connections_total == 1


def test_start_twice_raises() -> None:
    with Simulator(CREDENTIALS) as sim:
        with pytest.raises(FeedStateError, match="already running"):
            sim.start()


def test_url_before_start_raises() -> None:
    sim = Simulator(CREDENTIALS)
    with pytest.raises(FeedStateError, match="not been started"):
        sim.url
    sim.stop()  # does nothing


def test_busy_port_raises_oserror() -> None:
    with Simulator(CREDENTIALS) as first:
        with pytest.raises(OSError):
            Simulator(CREDENTIALS, port=first.port).start()


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    sim = Simulator(CREDENTIALS, host="::1")
    try:
        sim.start()
    except OSError as exc:
        pytest.skip(f"cannot listen on ::1: {exc}")
    try:
        assert sim.url.startswith("ws://[::1]:")
        assert run(handshake_status(url(sim, KEY, TOKEN))) == 101
    finally:
        sim.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "192.168.1.10", "::"])
def test_non_loopback_host_rejected(host: str) -> None:
    with pytest.raises(InvalidRequestError, match="127.0.0.1 or ::1"):
        Simulator(CREDENTIALS, host=host)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"tick_interval": 0}, "tick_interval"),
        ({"heartbeat_interval": float("nan")}, "heartbeat_interval"),
        ({"tick_probability": 1.5}, "tick_probability"),
        ({"max_connections_per_key": 0}, "max_connections_per_key"),
        ({"max_instruments_per_connection": -1}, "max_instruments_per_connection"),
        ({"port": 70000}, "port"),
        ({"seed": -1}, "seed"),
        ({"replay": [b""]}, "replay message at index 0"),
    ],
)
def test_invalid_options_rejected(options: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        Simulator(CREDENTIALS, **options)  # type: ignore[arg-type]


def test_invalid_credentials_rejected_without_token() -> None:
    with pytest.raises(InvalidRequestError, match="access token for api_key 'k'") as raised:
        Simulator({"k": ""})
    with pytest.raises(InvalidRequestError, match="api_key"):
        Simulator({"": "secret-value"})
    with pytest.raises(InvalidRequestError, match="mapping"):
        Simulator([("k", "t")])  # type: ignore[arg-type]
    assert "secret" not in str(raised.value)


def test_limits_configurable() -> None:
    with Simulator(CREDENTIALS, max_connections_per_key=1, max_instruments_per_connection=2) as sim:

        async def main() -> None:
            async with open_client(sim) as ws:
                assert await handshake_status(url(sim)) == 429
                await send_json(ws, "subscribe", [1, 2, 3])
                text = (await receive_until(ws, lambda m: isinstance(m, str)))[-1]
                assert text == '{"type":"error","data":"Can\'t subscribe to more than 2 instruments."}'

        run(main())
