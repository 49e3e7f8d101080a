"""Message faults: fragmented and slowly written frames, damaged messages, full snapshots."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator

import pytest

from kitefeed.parsers.decoder import Decoder
from kitefeed.sim import Simulator

from .client import (
    CREDENTIALS,
    KEY,
    NSE_TOKEN,
    WAIT,
    decode,
    has_token,
    is_frame,
    open_client,
    packet_lengths,
    receive_until,
    run,
    send_json,
    wait_for_state,
)
from .rawclient import RawClient

SNAPSHOT_TOKENS = [(index << 8) | 1 for index in range(1, 3001)]  # 3,000 NSE equity tokens
FULL_SNAPSHOT_BYTES = 2 + 3000 * (2 + 184)

OPCODE_BINARY, OPCODE_CONTINUATION = 0x2, 0x0


@pytest.fixture
def still_sim() -> Iterator[Simulator]:
    """A simulator whose instruments never tick, so every snapshot of a token is the same."""
    with Simulator(CREDENTIALS, tick_interval=0.02, tick_probability=0.0, heartbeat_interval=0.1, seed=7) as sim:
        yield sim


def _json(action: str, value: object) -> str:
    return json.dumps({"a": action, "v": value})


def test_fragmented_message_frames_and_bytes(still_sim: Simulator) -> None:
    tokens = SNAPSHOT_TOKENS[:10]
    with RawClient(still_sim) as raw:
        raw.send_text(_json("mode", ["full", tokens]))
        whole = raw.read_message()
        assert len(whole) == 1
        assert len(whole[0].payload) == 2 + 10 * 186

        assert still_sim.fragment_messages(KEY, 256) == 1
        assert still_sim.send_snapshot(KEY) == 10
        frames = raw.read_message()

    payload = b"".join(frame.payload for frame in frames)
    assert payload == whole[0].payload
    assert frames[0].opcode == OPCODE_BINARY
    assert all(frame.opcode == OPCODE_CONTINUATION for frame in frames[1:])
    assert [len(frame.payload) for frame in frames[:-2]] == [256] * (len(frames) - 2)
    assert len(frames) == math.ceil(len(payload) / 256) + 1  # websockets ends with an empty final frame
    assert len(decode(payload)) == 10


def test_fragmented_message_reassembled_by_websockets(still_sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(still_sim) as ws:
            await send_json(ws, "mode", ["full", SNAPSHOT_TOKENS[:50]])
            whole = (await receive_until(ws, is_frame))[-1]

            assert still_sim.fragment_messages(fragment_size=100) == 1
            assert still_sim.send_snapshot() == 50
            fragmented = (await receive_until(ws, is_frame))[-1]
            assert fragmented == whole

            # Heartbeats (1 byte) fit one fragment and stay whole.
            await receive_until(ws, lambda m: m == b"\x00")

    run(main())


async def _subscribe_full(ws: object, sim: Simulator, tokens: list[int]) -> None:
    """Subscribe ``tokens`` in full mode and read the two snapshots the requests cause."""
    await send_json(ws, "subscribe", tokens)  # type: ignore[arg-type]
    await send_json(ws, "mode", ["full", tokens])  # type: ignore[arg-type]
    await receive_until(ws, lambda m: is_frame(m) and set(packet_lengths(m).values()) == {184})  # type: ignore[arg-type, attr-defined]
    await wait_for_state(lambda: sim.connections(KEY)[0].subscribed == len(tokens))


@pytest.mark.parametrize(("chunk_size", "delay"), [(1000, 0.0), (16384, 0.002)])
def test_slow_writes_deliver_full_snapshot(still_sim: Simulator, chunk_size: int, delay: float) -> None:
    async def main() -> None:
        async with open_client(still_sim) as ws:
            await _subscribe_full(ws, still_sim, SNAPSHOT_TOKENS)
            writes_before = still_sim.connections(KEY)[0].socket_writes

            assert still_sim.slow_writes(KEY, chunk_size, delay) == 1
            pong = await ws.ping()  # a pong written among the chunks must not break the frame
            assert still_sim.send_snapshot(KEY) == 3000
            message = (await receive_until(ws, lambda m: is_frame(m) and len(m) > 1000))[-1]
            await asyncio.wait_for(pong, WAIT)

            assert len(message) == FULL_SNAPSHOT_BYTES
            decoder = Decoder()
            ticks = decoder.decode(message)
            assert len(ticks) == 3000
            assert decoder.stats().errors == 0
            assert sorted(ticks["instrument_token"].tolist()) == SNAPSHOT_TOKENS

            writes = still_sim.connections(KEY)[0].socket_writes - writes_before
            assert writes >= math.ceil(FULL_SNAPSHOT_BYTES / chunk_size)

            # Turning slow writes off returns to one write per frame.
            still_sim.slow_writes(KEY, None)
            await receive_until(ws, lambda m: m == b"\x00")

    run(main())


@pytest.mark.parametrize(
    ("kind", "counter"),
    [
        ("truncated", "truncated_packets"),
        ("unknown_length", "unknown_length_packets"),
        ("count_exceeds_data", "missing_packets"),
        ("short_packet", "short_packets"),
        ("empty_packet", "short_packets"),
    ],
)
def test_garbage_counts_one_error_keeps_good(still_sim: Simulator, kind: str, counter: str) -> None:
    tokens = [NSE_TOKEN, *SNAPSHOT_TOKENS[:4]]

    async def main() -> None:
        async with open_client(still_sim) as ws:
            await _subscribe_full(ws, still_sim, tokens)
            packets_before = still_sim.connections(KEY)[0].packets_sent

            good = still_sim.send_garbage(KEY, kind)  # type: ignore[arg-type]
            assert good == 3
            message = (await receive_until(ws, is_frame))[-1]
            assert isinstance(message, bytes)

            decoder = Decoder()
            ticks = decoder.decode(message)
            stats = decoder.stats()
            assert getattr(stats, counter) == 1
            assert stats.errors == 1
            assert len(ticks) == good
            assert set(ticks["instrument_token"].tolist()) <= set(tokens)
            assert still_sim.connections(KEY)[0].packets_sent == packets_before + good

    run(main())


def test_garbage_without_subscriptions(still_sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(still_sim) as ws:
            await wait_for_state(lambda: len(still_sim.connections(KEY)) == 1)
            assert still_sim.send_garbage(kind="unknown_length") == 0
            message = (await receive_until(ws, is_frame))[-1]
            decoder = Decoder()
            assert len(decoder.decode(message)) == 0  # type: ignore[arg-type]
            assert decoder.stats().unknown_length_packets == 1

    run(main())


def test_snapshot_one_message_in_each_mode(still_sim: Simulator) -> None:
    ltp, quote, full = SNAPSHOT_TOKENS[:2], SNAPSHOT_TOKENS[2:5], SNAPSHOT_TOKENS[5:9]

    async def main() -> None:
        async with open_client(still_sim) as ws:
            await send_json(ws, "subscribe", ltp + quote + full)
            await send_json(ws, "mode", ["ltp", ltp])
            await send_json(ws, "mode", ["full", full])
            await receive_until(ws, has_token(full[0]))
            await wait_for_state(lambda: still_sim.connections(KEY)[0].modes[full[-1]].wire_name == "full")

            assert still_sim.send_snapshot(KEY) == 9
            message = (await receive_until(ws, lambda m: is_frame(m) and len(packet_lengths(m)) == 9))[-1]
            lengths = packet_lengths(message)  # type: ignore[arg-type]
            assert {lengths[token] for token in ltp} == {8}
            assert {lengths[token] for token in quote} == {44}
            assert {lengths[token] for token in full} == {184}

    run(main())


def test_snapshot_counts_over_connections(still_sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(still_sim) as first, open_client(still_sim) as second, open_client(still_sim):
            await send_json(first, "subscribe", SNAPSHOT_TOKENS[:3])
            await send_json(second, "subscribe", SNAPSHOT_TOKENS[:5])
            await wait_for_state(lambda: sorted(c.subscribed for c in still_sim.connections(KEY)) == [0, 3, 5])
            assert still_sim.send_snapshot(KEY) == 8
            connection_id = still_sim.connections(KEY)[1].connection_id
            assert still_sim.send_snapshot(connection_id=connection_id) == 5

    run(main())
