"""Server-pushed messages: heartbeats, text messages and replayed frames."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect

from kitefeed.errors import InvalidRequestError
from kitefeed.parsers import TICK_DTYPE, PacketKind, encode_frame
from kitefeed.sim import Simulator, frame_from_packet, load_replay

from .client import (
    KEY,
    OTHER_KEY,
    OTHER_TOKEN,
    TOKEN,
    is_frame,
    open_client,
    receive_for,
    receive_until,
    run,
    wait_for_state,
)


def test_heartbeats_arrive_without_subscriptions(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            heartbeats = 0

            def third_heartbeat(message: bytes | str) -> bool:
                nonlocal heartbeats
                heartbeats += message == b"\x00"
                return heartbeats == 3

            messages = await receive_until(ws, third_heartbeat)
            assert set(messages) == {b"\x00"}
            assert sim.connections()[0].heartbeats_sent >= 3

    run(main())


def test_pings_answered(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            pong = await ws.ping()
            await pong

    run(main())


def test_send_text_reaches_every_connection_of_key(sim: Simulator) -> None:
    message = {"type": "order", "data": {"order_id": "260605000123456", "status": "COMPLETE"}}

    async def main() -> None:
        async with open_client(sim) as first, open_client(sim) as second, open_client(
            sim, OTHER_KEY, OTHER_TOKEN
        ) as other:
            await wait_for_state(lambda: len(sim.connections()) == 3)
            assert sim.send_text(KEY, message) == 2

            for ws in (first, second):
                text = (await receive_until(ws, lambda m: isinstance(m, str)))[-1]
                assert json.loads(text) == message
            assert not [m for m in await receive_for(other, 0.3) if isinstance(m, str)]
            assert [c.texts_sent for c in sim.connections()] == [1, 1, 0]

    run(main())


def test_send_text_rejects_bad_input(sim: Simulator) -> None:
    with pytest.raises(InvalidRequestError, match="unknown api_key"):
        sim.send_text("nobody", {"type": "message", "data": "x"})
    with pytest.raises(InvalidRequestError, match="JSON"):
        sim.send_text(KEY, {"type": "message", "data": object()})
    assert sim.send_text(KEY, {"type": "message", "data": "nobody listens"}) == 0


def _frames() -> list[bytes]:
    ticks = np.zeros(2, dtype=TICK_DTYPE)
    ticks["instrument_token"] = [408065, 256265]
    ticks["last_price"] = [1573.15, 24050.5]
    ticks["kind"] = [PacketKind.LTP, PacketKind.LTP]
    # Malformed on purpose: replay sends bytes as they are.
    truncated = (1).to_bytes(2, "big") + (44).to_bytes(2, "big") + b"\x00\x06\x3a\x01"
    return [encode_frame(ticks), encode_frame(ticks[:1]), truncated]


def test_replay_frames_arrive_byte_exact() -> None:
    frames = _frames()
    with Simulator({KEY: TOKEN}, tick_interval=0.02, heartbeat_interval=60, replay=frames) as sim:

        async def main() -> None:
            async with open_client(sim) as ws:
                received = await receive_until(ws, lambda m: m == frames[-1])
                assert received == frames  # each connection starts at the first frame
                later = await receive_until(ws, lambda m: m == frames[-1])
                assert later[-len(frames):] == frames
                assert set(later) == set(frames)

        run(main())


def test_replay_loader_reads_packet_and_bin(tmp_path: Path) -> None:
    frames = _frames()
    packet = frames[1][4:]  # the bare 8-byte LTP packet after count and length
    (tmp_path / "ltp.packet").write_text(base64.b64encode(packet).decode() + "\n")
    (tmp_path / "two.bin").write_bytes(frames[0])

    loaded = load_replay([tmp_path / "ltp.packet", tmp_path / "two.bin"])
    assert loaded == [frames[1], frames[0]]
    assert frame_from_packet(packet) == frames[1]


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("bad.packet", base64.b64encode(b"\x00" * 12), "invalid packet length 12"),
        ("empty.bin", b"", "empty"),
        ("frame.txt", b"\x00\x00", "expected a .bin or .packet"),
    ],
)
def test_replay_loader_rejects_bad_files(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidRequestError, match=match):
        load_replay([path])


def test_replay_runs_next_to_random_walk() -> None:
    frames = _frames()[:1]
    with Simulator({KEY: TOKEN}, tick_interval=0.02, tick_probability=1.0, replay=frames) as sim:

        async def main() -> None:
            async with open_client(sim) as ws:
                await ws.send(json.dumps({"a": "subscribe", "v": [738561]}))
                messages = await receive_for(ws, 0.3)
                walked = [m for m in messages if is_frame(m) and m not in frames]
                assert walked
                assert frames[0] in messages

        run(main())


def test_slow_reader_gets_drops_not_stall() -> None:
    tokens = list(range(3_000_001, 3_003_001))
    with Simulator({KEY: TOKEN}, tick_interval=0.01, tick_probability=1.0) as sim:

        async def main() -> None:
            async with open_client(sim) as slow, open_client(sim) as fast:
                await slow.send(json.dumps({"a": "mode", "v": ["full", tokens]}))
                await wait_for_state(lambda: sim.connections()[0].dropped > 0, seconds=30)

                # The server keeps serving other connections while one is stuck.
                await fast.send(json.dumps({"a": "subscribe", "v": [408065]}))
                await receive_until(fast, lambda m: is_frame(m) and m[4:8] == (408065).to_bytes(4, "big"))
                assert sim.connections()[1].dropped == 0

        run(main())


def test_replay_burst_sends_several_messages_per_cycle() -> None:
    message = b"\x00\x01\x00\x08" + (256265).to_bytes(4, "big") + (100).to_bytes(4, "big")

    async def receive(url: str) -> list[bytes]:
        received: list[bytes] = []
        async with connect(f"{url}/?api_key=k&access_token=t", compression=None, proxy=None) as websocket:
            while len(received) < 12:
                data = await asyncio.wait_for(websocket.recv(), 10)
                if isinstance(data, bytes) and len(data) > 1:
                    received.append(data)
        return received

    with Simulator({"k": "t"}, tick_interval=0.2, tick_probability=0.0, replay=[message], replay_burst=4) as sim:
        received = asyncio.run(receive(sim.url))
        cycles = sim.stats().cycles

    assert received == [message] * 12
    # One message a cycle would have needed at least 12 cycles; four a cycle need 3.
    assert cycles < 12
