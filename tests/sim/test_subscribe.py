"""Subscription requests: modes and packet kinds, unsubscribe, the instrument limit, bad requests."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from kitefeed.parsers import Mode, PacketKind
from kitefeed.sim import Simulator

from .client import (
    INDEX_TOKEN,
    KEY,
    NSE_TOKEN,
    decode,
    has_token,
    is_frame,
    open_client,
    packet_lengths,
    receive_for,
    receive_until,
    run,
    send_json,
    wait_for_state,
)


def test_subscribe_sends_quote_packet_first(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await send_json(ws, "subscribe", [NSE_TOKEN])
            messages = await receive_until(ws, is_frame)
            frame = messages[-1]
            assert packet_lengths(frame) == {NSE_TOKEN: 44}
            ticks = decode(frame)
            assert ticks["kind"].tolist() == [PacketKind.QUOTE]
            assert ticks["instrument_token"].tolist() == [NSE_TOKEN]
            assert sim.connections()[0].modes == {NSE_TOKEN: Mode.QUOTE}

    run(main())


def test_mode_changes_index_packet_kind(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await send_json(ws, "subscribe", [INDEX_TOKEN])
            frame = (await receive_until(ws, has_token(INDEX_TOKEN)))[-1]
            assert packet_lengths(frame)[INDEX_TOKEN] == 28

            for mode, length in (("full", 32), ("ltp", 8), ("quote", 28)):
                await send_json(ws, "mode", [mode, [INDEX_TOKEN]])
                done = lambda m, length=length: has_token(INDEX_TOKEN)(m) and packet_lengths(m)[INDEX_TOKEN] == length
                frame = (await receive_until(ws, done))[-1]
                assert decode(frame)["tradable"].tolist() == [False]

            # After the change is visible, every later packet of the token has the new length.
            later = [m for m in await receive_for(ws, 0.3) if has_token(INDEX_TOKEN)(m)]
            assert later
            assert {packet_lengths(m)[INDEX_TOKEN] for m in later} == {28}

    run(main())


def test_mode_on_new_token_subscribes_it(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await send_json(ws, "mode", ["full", [NSE_TOKEN]])
            frame = (await receive_until(ws, has_token(NSE_TOKEN)))[-1]
            assert packet_lengths(frame) == {NSE_TOKEN: 184}
            assert sim.connections()[0].modes == {NSE_TOKEN: Mode.FULL}

    run(main())


def test_resubscribe_resets_mode_to_quote(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await send_json(ws, "mode", ["full", [NSE_TOKEN]])
            await wait_for_state(lambda: sim.connections()[0].modes == {NSE_TOKEN: Mode.FULL})
            await send_json(ws, "subscribe", [NSE_TOKEN])
            await wait_for_state(lambda: sim.connections()[0].modes == {NSE_TOKEN: Mode.QUOTE})
            done = lambda m: has_token(NSE_TOKEN)(m) and packet_lengths(m)[NSE_TOKEN] == 44
            await receive_until(ws, done)

    run(main())


def test_mixed_modes_share_one_frame() -> None:
    tokens = [NSE_TOKEN, INDEX_TOKEN, 738561]
    with Simulator({KEY: "token-a"}, tick_interval=0.02, tick_probability=1.0) as sim:

        async def main() -> None:
            async with open_client(sim, KEY, "token-a") as ws:
                await send_json(ws, "subscribe", tokens)
                await send_json(ws, "mode", ["ltp", [738561]])
                await send_json(ws, "mode", ["full", [INDEX_TOKEN]])
                expected = {NSE_TOKEN: 44, INDEX_TOKEN: 32, 738561: 8}
                await receive_until(ws, lambda m: is_frame(m) and packet_lengths(m) == expected)

        run(main())


def test_unsubscribe_stops_ticks(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await send_json(ws, "subscribe", [NSE_TOKEN, INDEX_TOKEN])
            await receive_until(ws, lambda m: is_frame(m) and INDEX_TOKEN in packet_lengths(m) and len(packet_lengths(m)) == 1)
            await send_json(ws, "unsubscribe", [INDEX_TOKEN, 999])
            await wait_for_state(lambda: sim.connections()[0].subscribed == 1)

            sent = sim.connections()[0].packets_by_token[INDEX_TOKEN]
            cycles = sim.stats().cycles
            await wait_for_state(lambda: sim.stats().cycles >= cycles + 20)
            info = sim.connections()[0]
            assert info.packets_by_token[INDEX_TOKEN] == sent
            assert info.packets_by_token[NSE_TOKEN] > 1
            assert info.modes == {NSE_TOKEN: Mode.QUOTE}

            # Frames queued before the request may still be in flight; the last ones are not.
            tail = [m for m in await receive_for(ws, 0.3) if is_frame(m)][-3:]
            assert tail
            assert all(INDEX_TOKEN not in packet_lengths(m) for m in tail)

    run(main())


def test_3001st_instrument_rejected_first_3000_stream(sim: Simulator) -> None:
    tokens = list(range(1_000_001, 1_003_002))  # 3001 tokens

    async def main() -> None:
        async with open_client(sim) as ws:
            await send_json(ws, "subscribe", tokens)
            messages = await receive_until(ws, lambda m: isinstance(m, str))
            assert json.loads(messages[-1]) == {
                "type": "error",
                "data": "Can't subscribe to more than 3000 instruments.",
            }

            snapshot = [m for m in messages if is_frame(m)]
            snapshot += [m for m in await receive_until(ws, is_frame)]
            first = packet_lengths(snapshot[0])
            assert len(first) == 3000
            assert set(first) == set(tokens[:3000])

            # The connection stays open and streams the accepted tokens only.
            pushed = [m for m in await receive_for(ws, 0.5) if is_frame(m)]
            assert pushed
            streamed = set().union(*(packet_lengths(m) for m in pushed))
            assert tokens[-1] not in streamed
            assert streamed <= set(tokens[:3000])

            # Subscribing an accepted token again takes no slot and sends no error.
            await send_json(ws, "subscribe", tokens[:1])
            later = await receive_until(ws, has_token(tokens[0]))
            assert not [m for m in later if isinstance(m, str)]
            assert sim.connections()[0].subscribed == 3000

    run(main())


def test_instrument_limit_is_per_connection(sim: Simulator) -> None:
    tokens = list(range(2_000_001, 2_006_001))

    async def main() -> None:
        async with open_client(sim) as first, open_client(sim) as second:
            await send_json(first, "subscribe", tokens[:3000])
            await send_json(second, "subscribe", tokens[3000:])
            await wait_for_state(lambda: [c.subscribed for c in sim.connections()] == [3000, 3000])
            assert all(not isinstance(m, str) for m in await receive_for(second, 0.2))

    run(main())


def test_invalid_requests_ignored(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            for text in (
                "not json",
                "[1, 2]",
                json.dumps({"a": "refresh", "v": [NSE_TOKEN]}),
                json.dumps({"a": "mode", "v": ["FULL", [NSE_TOKEN]]}),
                json.dumps({"a": "mode", "v": ["full"]}),
                json.dumps({"a": "subscribe", "v": str(NSE_TOKEN)}),
            ):
                await ws.send(text)
            await ws.send(b"\x01\x02")
            await ws.send(json.dumps({"a": "subscribe", "v": [str(NSE_TOKEN), 1.5, True, -1, 2**32, None]}))
            await ws.send(json.dumps({"a": "subscribe", "v": []}))
            await ws.send(json.dumps({"a": "unsubscribe", "v": [NSE_TOKEN]}))
            await wait_for_state(lambda: sim.connections()[0].ignored_requests == 7)

            # Still open and serving: a valid request works.
            await send_json(ws, "subscribe", [INDEX_TOKEN])
            await receive_until(ws, has_token(INDEX_TOKEN))
            assert not [m for m in await receive_for(ws, 0.1) if isinstance(m, str)]

    run(main())
    assert sim.packets_sent.keys() == {INDEX_TOKEN}


def test_json_whitespace_and_member_order_accepted(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            await ws.send('{ "v" : [ 408065 ] ,\n "a" : "subscribe" }')
            await receive_until(ws, has_token(NSE_TOKEN))

    run(main())


def test_same_token_same_prices_on_two_connections(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as first, open_client(sim) as second:
            await send_json(first, "mode", ["ltp", [NSE_TOKEN]])
            await send_json(second, "mode", ["ltp", [NSE_TOKEN]])
            await receive_until(first, is_frame)
            await receive_until(second, is_frame)
            received = await asyncio.gather(receive_for(first, 0.5), receive_for(second, 0.5))
            frames = [[m for m in messages if is_frame(m)] for messages in received]
            # Each push cycle sends one byte-identical frame to both connections.
            common = set(frames[0]) & set(frames[1])
            assert len(common) >= 3
            prices = {tick["last_price"] for frame in frames[0] + frames[1] for tick in decode(frame)}
            assert len(prices) >= 2

    run(main())


def test_decoded_values_plausible(sim: Simulator) -> None:
    tokens = [NSE_TOKEN, INDEX_TOKEN, 0x0001_2303, 0x0001_2306, 0x0001_230C, 0x0001_2302]

    async def main() -> None:
        async with open_client(sim) as ws:
            await send_json(ws, "mode", ["full", tokens])
            frame = (await receive_until(ws, is_frame))[-1]
            ticks = decode(frame)
            assert sorted(ticks["instrument_token"].tolist()) == sorted(tokens)
            by_token = {int(t["instrument_token"]): t for t in ticks}

            assert 100 <= by_token[NSE_TOKEN]["last_price"] <= 5000 * 1.02
            assert 10_000 * 0.98 <= by_token[INDEX_TOKEN]["last_price"] <= 80_000 * 1.02
            assert 80 <= by_token[0x0001_2303]["last_price"] <= 87
            assert by_token[0x0001_2302]["oi"] > 0
            assert by_token[NSE_TOKEN]["oi"] == 0

            tradable = ticks[ticks["tradable"]]
            assert np.all(tradable["low"] <= tradable["last_price"])
            assert np.all(tradable["last_price"] <= tradable["high"])
            assert np.all(np.diff(tradable["bid_price"], axis=1) < 0)
            assert np.all(np.diff(tradable["ask_price"], axis=1) > 0)
            assert np.all(tradable["bid_price"][:, 0] < tradable["ask_price"][:, 0])
            assert np.all(tradable["volume_traded"] > 0)

    run(main())
