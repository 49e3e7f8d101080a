"""Both WebSocket transports against the simulator: messages, fragments, closes and rejections."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest

from kitefeed.engine.transport import TRANSPORTS, Channel, ChannelClosed, HandshakeRejected, build_url, open_transport
from kitefeed.errors import InvalidRequestError
from kitefeed.parsers.decoder import Decoder
from kitefeed.sim import Simulator

from .conftest import CREDENTIALS

TOKENS = [((40_000 + n) << 8) | 1 for n in range(3000)]
OPEN_TIMEOUT = 5.0
RECEIVE_TIMEOUT = 10.0


def url_of(sim: Simulator, token: str = CREDENTIALS["key_a"]) -> str:
    return build_url(sim.url, "key_a", token)


async def subscribe_full(channel: Channel, tokens: list[int]) -> None:
    await channel.send(orjson.dumps({"a": "subscribe", "v": tokens}).decode())
    await channel.send(orjson.dumps({"a": "mode", "v": ["full", tokens]}).decode())


async def recv_binary_with(channel: Channel, token_count: int) -> bytes:
    """Return the first binary message that declares ``token_count`` packets."""
    for _ in range(1000):
        message = await asyncio.wait_for(channel.recv(), RECEIVE_TIMEOUT)
        if isinstance(message, bytes) and len(message) >= 2 and int.from_bytes(message[:2], "big") == token_count:
            return message
    raise AssertionError(f"no message with {token_count} packets among 1000")


def test_unknown_transport_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="invalid transport 'aiohttp'"):
        open_transport("aiohttp")


@pytest.mark.parametrize("name", TRANSPORTS)
def test_recv_ticks_after_subscribe(sim: Simulator, name: str) -> None:
    async def run() -> np.ndarray:
        channel = await open_transport(name).open(url_of(sim), timeout=OPEN_TIMEOUT)
        try:
            await subscribe_full(channel, TOKENS[:5])
            sim.send_snapshot("key_a")
            message = await recv_binary_with(channel, 5)
        finally:
            await channel.close()
            await channel.close()
        return Decoder().decode(message)

    ticks = asyncio.run(run())
    assert sorted(ticks["instrument_token"].tolist()) == TOKENS[:5]


@pytest.mark.parametrize("name", TRANSPORTS)
def test_deliver_fragmented_snapshot_and_text(sim: Simulator, name: str) -> None:
    received: list[bytes] = []
    texts: list[str] = []
    full_size = 2 + len(TOKENS) * (2 + 184)

    def on_binary(message: bytes | memoryview) -> None:
        # The server also sends a snapshot after each request, so only the last
        # full-mode message of all instruments counts.
        if len(message) == full_size:
            received.append(bytes(message))

    async def run() -> None:
        channel = await open_transport(name).open(url_of(sim), timeout=OPEN_TIMEOUT)
        delivering = asyncio.ensure_future(channel.deliver(on_binary, texts.append))
        try:
            await subscribe_full(channel, TOKENS)
            await asyncio.sleep(0.3)
            sim.fragment_messages("key_a", 1024)
            assert sim.send_snapshot("key_a") == len(TOKENS)
            sim.send_text("key_a", {"type": "message", "data": "hello"})
            for _ in range(200):
                if len(received) >= 2 and texts:
                    break
                await asyncio.sleep(0.05)
        finally:
            await channel.close()
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(delivering, RECEIVE_TIMEOUT)

    asyncio.run(run())
    assert len(received) >= 2
    ticks = Decoder().decode(received[-1])
    assert sorted(ticks["instrument_token"].tolist()) == TOKENS
    assert orjson.loads(texts[0]) == {"type": "message", "data": "hello"}


@pytest.mark.parametrize("name", TRANSPORTS)
@pytest.mark.parametrize("abrupt", [False, True])
def test_deliver_ends_when_server_drops(sim: Simulator, name: str, abrupt: bool) -> None:
    async def run() -> None:
        channel = await open_transport(name).open(url_of(sim), timeout=OPEN_TIMEOUT)
        delivering = asyncio.ensure_future(channel.deliver(lambda message: None, lambda text: None))
        try:
            await asyncio.sleep(0.1)
            assert sim.drop_connections("key_a", abrupt=abrupt) == 1
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(delivering, RECEIVE_TIMEOUT)
            with pytest.raises(ChannelClosed):
                await channel.send('{"a": "subscribe", "v": [1]}')
        finally:
            await channel.close()

    asyncio.run(run())


@pytest.mark.parametrize("name", TRANSPORTS)
def test_deliver_reraises_handler_error(sim: Simulator, name: str) -> None:
    def on_binary(message: bytes | memoryview) -> None:
        raise ZeroDivisionError("handler failed")

    async def run() -> None:
        channel = await open_transport(name).open(url_of(sim), timeout=OPEN_TIMEOUT)
        try:
            await subscribe_full(channel, TOKENS[:2])
            sim.send_snapshot("key_a")
            with pytest.raises(ZeroDivisionError, match="handler failed"):
                await asyncio.wait_for(channel.deliver(on_binary, lambda text: None), RECEIVE_TIMEOUT)
        finally:
            await channel.close()

    asyncio.run(run())


@pytest.mark.parametrize("name", TRANSPORTS)
@pytest.mark.parametrize("status", [403, 429])
def test_rejected_handshake_status(sim: Simulator, name: str, status: int) -> None:
    sim.reject_handshakes("key_a", status, count=1)

    async def run() -> None:
        with pytest.raises(HandshakeRejected) as caught:
            await open_transport(name).open(url_of(sim), timeout=OPEN_TIMEOUT)
        assert caught.value.status == status

    asyncio.run(run())


@pytest.mark.parametrize("name", TRANSPORTS)
def test_wrong_token_is_403(sim: Simulator, name: str) -> None:
    async def run() -> None:
        with pytest.raises(HandshakeRejected) as caught:
            await open_transport(name).open(url_of(sim, "not-the-token"), timeout=OPEN_TIMEOUT)
        assert caught.value.status == 403

    asyncio.run(run())
