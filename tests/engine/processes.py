"""Functions that run in child processes started by the engine tests."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection

import numpy as np

from kitefeed.engine import open_reader


def read_feed_in_child(feed_name: str, wanted: list[int], pipe: Connection) -> None:
    """Attach to ``feed_name`` by name, read until every wanted token was seen, report records."""
    batches = []
    with open_reader(feed_name) as reader:
        deadline = time.monotonic() + 20
        tokens: set[int] = set()
        while time.monotonic() < deadline and not tokens >= set(wanted):
            batch = reader.read(timeout=0.2)
            if len(batch):
                batches.append(batch[["instrument_token", "key_index", "connection_index", "kind", "last_price"]].copy())
                tokens.update(batch["instrument_token"].tolist())
        writeable = bool(len(batch)) and batch.flags.writeable
        stats = reader.stats()
    records = np.concatenate(batches) if batches else np.empty(0)
    pipe.send((records.tobytes(), records.dtype.descr if len(records) else None, writeable, stats.lost, reader.keys))
    pipe.close()
