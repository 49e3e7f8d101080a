"""``kitefeed demo``: the whole path on one machine, with the simulator in place of Kite.

It starts the simulator, a feed of two API keys with 12,000 instruments in mixed modes
(each key needs two connections for its 6,000), and a reader thread; prints a table per
second; and ends with a summary of ticks published, read and lost per key.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import threading
import time
from typing import Any

import click
import numpy as np
import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..dashboard import Dashboard
from ..engine import Feed, FeedStats
from ..parsers import TICK_DTYPE, Mode
from ..sim import Simulator

_KEYS = 2
_INSTRUMENTS = 12_000
_INDEX_COUNT = 60


def demo_instruments(count: int = _INSTRUMENTS) -> dict[Mode, list[int]]:
    """Instrument tokens by mode: indices, NSE and NFO instruments, some currency and commodity."""
    segments = [1] * 6 + [2] * 3 + [3, 7, 12]
    tokens_by_mode: dict[Mode, list[int]] = {mode: [] for mode in Mode}
    modes = [Mode.QUOTE, Mode.LTP, Mode.FULL]
    for number in range(count):
        if number < _INDEX_COUNT:
            token = ((1000 + number) << 8) | 9
        else:
            token = ((100_000 + number) << 8) | segments[number % len(segments)]
        tokens_by_mode[modes[number % len(modes)]].append(token)
    return tokens_by_mode


class _Counter(threading.Thread):
    """Reads the feed and counts records per key until the feed stops."""

    def __init__(self, feed: Feed) -> None:
        super().__init__(name="kitefeed-demo-reader", daemon=True)
        self.reader = feed.open_reader()
        self.read = np.zeros(_KEYS, dtype=np.int64)
        self.kinds = np.zeros(8, dtype=np.int64)

    def run(self) -> None:
        for batch in self.reader:
            self.read += np.bincount(batch["key_index"], minlength=_KEYS)[:_KEYS]
            self.kinds += np.bincount(batch["kind"], minlength=8)[:8]


def _table(stats: FeedStats, counter: _Counter, elapsed: float) -> Table:
    table = Table(title=f"kitefeed demo, {elapsed:4.1f} s", title_justify="left")
    for column in ("key", "connected", "instruments", "frames", "ticks", "published", "read", "lost", "errors"):
        table.add_column(column, justify="right" if column != "key" else "left")
    lost = counter.reader.lost_per_key()
    for key in stats.keys:
        table.add_row(
            key.api_key,
            f"{key.connected}/{sum(1 for c in key.connections if c.instruments)}",
            f"{key.instruments:,}",
            f"{key.frames:,}",
            f"{key.ticks:,}",
            f"{key.ring_position:,}",
            f"{int(counter.read[key.key_index]):,}",
            f"{lost[key.api_key]:,}",
            f"{key.parse_errors:,}",
        )
    return table


@click.command()
@click.option("--seconds", type=click.FloatRange(min=1), default=15.0, show_default=True, help="How long the demo streams, in seconds.")
@click.option("--json", "as_json", is_flag=True, help="End with the summary as one JSON object on the last line.")
@click.option("--ring-capacity", type=int, default=1 << 16, show_default=True, help="Records per key's ring (a power of two).")
def demo(seconds: float, as_json: bool, ring_capacity: int) -> None:
    """Stream simulated ticks from 2 API keys and 12,000 instruments through shared memory."""
    # Wide enough for the table when the output is a pipe or a file (rich assumes 80 columns).
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    credentials = {f"demo_key_{index}": secrets.token_hex(16) for index in range(_KEYS)}
    instruments = demo_instruments()

    with Simulator(credentials) as sim:
        with Feed(credentials, url=sim.url, ring_capacity=ring_capacity, name=f"demo.{secrets.token_hex(3)}") as feed:
            counter = _Counter(feed)
            counter.start()
            for mode, tokens in instruments.items():
                feed.subscribe(tokens, mode)
            console.print(
                f"feed {feed.name!r}: {_INSTRUMENTS:,} instruments over {_KEYS} keys "
                f"({', '.join(f'{mode.wire_name} {len(t):,}' for mode, t in instruments.items())}), "
                f"simulator at {sim.url}"
            )
            console.print(
                f"rings: {_KEYS} x {ring_capacity:,} records of {TICK_DTYPE.itemsize} bytes, "
                f"{feed.ring_bytes / 2**20:.1f} MiB of shared memory"
            )

            started = time.monotonic()
            deadline = started + seconds
            # On a terminal, one live table per key and connection; otherwise (a pipe, a
            # log file, CI) a per-key table printed every second.
            live = Live(console=console, auto_refresh=False) if console.is_terminal else None
            view = Dashboard("kitefeed demo")
            with live if live is not None else contextlib.nullcontext():
                while (now := time.monotonic()) < deadline:
                    time.sleep(min(1.0, deadline - now))
                    stats = feed.stats()
                    if live is not None:
                        live.update(view.table(stats), refresh=True)
                    else:
                        console.print(_table(stats, counter, time.monotonic() - started))
            final = feed.stats()
        # The feed has stopped: the reader drains what is left and its iteration ends.
        counter.join(timeout=10)
        summary = _summary(final, counter)
        counter.reader.close()

    if as_json:
        console.print(orjson.dumps(summary).decode(), soft_wrap=True, markup=False)
    else:
        console.print(
            f"published {summary['published']:,} ticks, read {summary['read']:,}, lost {summary['lost']:,}"
        )


def _summary(stats: FeedStats, counter: _Counter) -> dict[str, Any]:
    # Taken from the reader after the feed stopped, so that published counts every
    # record the writers ever wrote and equals read + lost once the reader has drained.
    rings = counter.reader.stats().rings
    per_key = {
        key.api_key: {
            "published": rings[key.key_index].published,
            "read": rings[key.key_index].read,
            "lost": rings[key.key_index].lost,
            "instruments": key.instruments,
            "connections": sum(1 for c in key.connections if c.instruments),
            "frames": key.frames,
            "parse_errors": key.parse_errors,
        }
        for key in stats.keys
    }
    return {
        "published": sum(k["published"] for k in per_key.values()),
        "read": sum(k["read"] for k in per_key.values()),
        "lost": sum(k["lost"] for k in per_key.values()),
        "per_key": per_key,
    }
