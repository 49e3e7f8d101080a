"""The official client, kiteconnect.KiteTicker, in a child process that counts the ticks it delivers.

Twisted's reactor runs once per process, so each benchmark starts a new process with
the "spawn" method. The reactor runs in the main thread; a daemon thread replies to the
parent on a control pipe.
"""

from __future__ import annotations

import os
import threading
from multiprocessing.connection import Connection
from typing import Any

from .procstat import process_cpu_seconds

CHILD_SECONDS = 300.0
"""Time the client waits for its next command before it stops."""


def run_ticker(control: Connection, url: str, api_key: str, access_token: str, tokens: list[int]) -> None:
    """Connect KiteTicker to ``url``, subscribe ``tokens`` in full mode and count the ticks.

    Replies to each "counters" on ``control`` with (ticks delivered to ``on_ticks``, CPU
    seconds of this process), and stops the reactor on None, a closed pipe or
    :data:`CHILD_SECONDS` without a command.
    """
    from kiteconnect import KiteTicker
    from twisted.internet import reactor

    ticker = KiteTicker(api_key, access_token, root=url, reconnect=False)
    delivered = [0]

    def on_ticks(ws: Any, ticks: list[dict[str, Any]]) -> None:
        delivered[0] += len(ticks)

    def on_connect(ws: Any, response: Any) -> None:
        ws.subscribe(tokens)
        ws.set_mode(ws.MODE_FULL, tokens)

    def answer() -> None:
        while control.poll(CHILD_SECONDS):
            try:
                command = control.recv()
            except EOFError:
                break
            if command != "counters":
                break
            # A Python int is read whole under the GIL, so the reactor thread needs no lock.
            control.send((delivered[0], process_cpu_seconds(os.getpid())))
        reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]

    ticker.on_ticks = on_ticks
    ticker.on_connect = on_connect
    threading.Thread(target=answer, name="bench-control", daemon=True).start()
    ticker.connect()
