"""Functions that run in child processes started by the latest-table tests."""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection

import numpy as np

from kitefeed import RingError
from kitefeed.consume import LatestTable


def attach_when_ready(feed_name: str, timeout: float = 20.0) -> LatestTable:
    """Attach to the table of ``feed_name``, retrying while it does not exist yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return LatestTable.attach(feed_name)
        except RingError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def read_table_in_child(feed_name: str, tokens: list[int], pipe: Connection) -> None:
    """Wait until the table has every token, then report its snapshot and per-token lookups."""
    with attach_when_ready(feed_name) as table:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(token in table for token in tokens):
            time.sleep(0.02)
        snapshot = table.snapshot()
        lookups = {token: table.get(token) for token in tokens}
        report = {
            "snapshot_tokens": snapshot["instrument_token"].tolist(),
            "found": sorted(token for token, record in lookups.items() if record is not None),
            "tokens_match": all(int(record["instrument_token"]) == token for token, record in lookups.items() if record is not None),
            "prices": [table.last_price(token) for token in tokens],
            "writeable": bool(snapshot.flags.writeable),
            "missing": table.get(1),
        }
    pipe.send(report)
    pipe.close()


def consistent(record: np.void) -> bool:
    """Whether every field that the test writer sets to the update number contains the same number (so the record is not torn)."""
    number = record["last_price"]
    return bool(
        record["open"] == number
        and record["volume_traded"] == number
        and (record["bid_price"] == number).all()
        and (record["ask_quantity"] == number).all()
        and int(record["recv_time"].astype(np.int64)) == number
    )


def hammer_table_in_child(feed_name: str, tokens: list[int], reads: int, seed: int, pipe: Connection) -> None:
    """Look records up ``reads`` times while the parent writes; report how many were torn."""
    rng = np.random.default_rng(seed)
    torn = 0
    checked = 0
    newest = 0.0
    with attach_when_ready(feed_name) as table:
        pipe.send("ready")
        for step in range(reads):
            if step % 200 == 0:
                records = table.snapshot()
                checked += len(records)
                torn += sum(not consistent(record) for record in records)
            token = int(rng.choice(tokens))
            record = table.get(token)
            if record is not None:
                checked += 1
                torn += not consistent(record)
                newest = max(newest, float(record["last_price"]))
    pipe.send((checked, torn, newest, os.getpid()))
    pipe.close()


def own_table_and_die(feed_name: str) -> None:
    """Create the table of ``feed_name`` and exit without closing it, like a killed process."""
    LatestTable.create(feed_name, capacity=16)
    os._exit(0)
