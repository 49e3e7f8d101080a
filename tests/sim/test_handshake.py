"""Handshake checks: credentials, missing parameters, the per-key connection limit."""

from __future__ import annotations

import json
import urllib.parse

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from kitefeed.sim import Simulator

from .client import (
    KEY,
    OTHER_KEY,
    OTHER_TOKEN,
    TOKEN,
    WAIT,
    handshake_status,
    open_client,
    receive_until,
    run,
    url,
    wait_for_state,
)


def test_bad_token_gets_403_with_json_body(sim: Simulator) -> None:
    async def main() -> None:
        try:
            async with connect(url(sim, KEY, "wrong"), open_timeout=WAIT):
                raise AssertionError("handshake with a wrong token succeeded")
        except InvalidStatus as exc:
            response = exc.response
        assert response.status_code == 403
        assert response.headers["Content-Type"] == "application/json"
        body = json.loads(bytes(response.body))
        assert body["status"] == "error"
        assert body["error_type"] == "TokenException"
        assert "wrong" not in body["message"]

    run(main())
    assert sim.refused == {403: 1}


def test_unknown_key_gets_403(sim: Simulator) -> None:
    assert run(handshake_status(url(sim, "nobody", TOKEN))) == 403


def test_token_of_other_key_gets_403(sim: Simulator) -> None:
    assert run(handshake_status(url(sim, KEY, OTHER_TOKEN))) == 403


def test_missing_parameters_get_400(sim: Simulator) -> None:
    targets = [
        sim.url,
        f"{sim.url}/?api_key={KEY}",
        f"{sim.url}/?access_token={TOKEN}",
        f"{sim.url}/?api_key=&access_token={TOKEN}",
    ]
    for target in targets:
        assert run(handshake_status(target)) == 400, target
    assert sim.refused == {400: len(targets)}


def test_any_path_and_unknown_parameters_accepted(sim: Simulator) -> None:
    assert run(handshake_status(url(sim, path="/"))) == 101
    assert run(handshake_status(url(sim, path="/ws/v3"))) == 101
    assert run(handshake_status(url(sim, extra="&uid=1718000000000"))) == 101
    unencoded = f"{sim.url}?access_token={TOKEN}&api_key={KEY}"
    assert run(handshake_status(unencoded)) == 101


def test_percent_encoded_credentials_decoded() -> None:
    key, token = "key with/odd+chars", "tok&en=%é"
    with Simulator({key: token}) as sim:
        assert run(handshake_status(url(sim, key, token))) == 101
        quoted = f"{sim.url}?api_key={urllib.parse.quote(key)}&access_token={urllib.parse.quote(token)}"
        assert run(handshake_status(quoted)) == 101


def test_fourth_connection_gets_429_until_one_closes(sim: Simulator) -> None:
    async def main() -> None:
        first = await open_client(sim)
        second = await open_client(sim)
        third = await open_client(sim)
        try:
            assert await handshake_status(url(sim)) == 429
            assert await handshake_status(url(sim, OTHER_KEY, OTHER_TOKEN)) == 101

            await first.close()
            assert await handshake_status(url(sim)) == 101
        finally:
            for client in (first, second, third):
                await client.close()

    run(main())
    assert sim.refused == {429: 1}


def test_slots_free_after_server_side_cleanup(sim: Simulator) -> None:
    async def main() -> None:
        for _ in range(3):
            clients = [await open_client(sim) for _ in range(3)]
            await wait_for_state(lambda: len(sim.connections(KEY)) == 3)
            for client in clients:
                await client.close()
            await wait_for_state(lambda: sim.connections(KEY) == [])

    run(main())
    assert sim.refused == {}


def test_set_token_rejects_old_token_keeps_open_connection(sim: Simulator) -> None:
    async def main() -> None:
        async with open_client(sim) as ws:
            sim.set_token(KEY, "token-new")
            assert await handshake_status(url(sim, KEY, TOKEN)) == 403
            assert await handshake_status(url(sim, KEY, "token-new")) == 101

            heartbeat = await receive_until(ws, lambda message: message == b"\x00")
            assert heartbeat[-1] == b"\x00"

    run(main())


def test_set_token_adds_key(sim: Simulator) -> None:
    sim.set_token("key-c", "token-c")
    assert run(handshake_status(url(sim, "key-c", "token-c"))) == 101
