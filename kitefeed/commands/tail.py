"""``kitefeed tail``: print the ticks of a running feed as they arrive."""

from __future__ import annotations

import time

import click
import numpy as np
import orjson

from ..engine import open_reader
from ..engine.reader import feed_keys
from ..errors import KitefeedError
from ..parsers import Mode, to_records


@click.command()
@click.argument("feed_name", metavar="NAME")
@click.option("--token", "tokens", type=int, multiple=True, help="Print only this instrument token (repeatable).")
@click.option("--key", "keys", multiple=True, help="Read only this API key's ring (repeatable).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after printing this many ticks.")
@click.option("--seconds", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print every field of each tick as one JSON object per line.")
@click.option("--oldest", is_flag=True, help="Start with the oldest tick still in the rings instead of new ones.")
def tail(
    feed_name: str,
    tokens: tuple[int, ...],
    keys: tuple[str, ...],
    count: int | None,
    seconds: float | None,
    as_json: bool,
    oldest: bool,
) -> None:
    """Attach to the running feed NAME and print its ticks until Ctrl-C or the feed stops."""
    try:
        labels = feed_keys(feed_name)
        reader = open_reader(feed_name, keys=list(keys) or None, start="oldest" if oldest else "newest", wait="block")
    except KitefeedError as exc:
        raise click.ClickException(str(exc)) from None

    wanted = np.array(sorted(set(tokens)), dtype=np.uint32)
    deadline = None if seconds is None else time.monotonic() + seconds
    printed = 0
    with reader:
        try:
            while count is None or printed < count:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                batch = reader.read(timeout=min(1.0, left) if left is not None else 1.0)
                if not len(batch):
                    if reader.closed:
                        break
                    continue
                if len(wanted):
                    batch = batch[np.isin(batch["instrument_token"], wanted)]
                if count is not None:
                    batch = batch[: count - printed]
                # Copied before printing, so that a slow terminal cannot leave it overwritten.
                _print(batch.copy(), labels, as_json)
                printed += len(batch)
        except KeyboardInterrupt:
            pass
        lost = reader.stats().lost
    if lost:
        click.echo(f"{lost} ticks were overwritten before this reader got to them", err=True)


def _print(batch: np.ndarray, labels: list[str], as_json: bool) -> None:
    if as_json:
        for record in to_records(batch):
            click.echo(orjson.dumps(record).decode())
        return

    names = {int(mode): mode.wire_name for mode in Mode}
    times = batch["recv_time"].astype("datetime64[us]").astype(str)
    for row, received in zip(batch, times):
        click.echo(
            f"{received}Z  {labels[row['key_index']] if row['key_index'] < len(labels) else row['key_index']}"
            f"/{row['connection_index']}  {row['instrument_token']:>10}  "
            f"{names.get(int(row['mode']), '?'):<5}  {row['last_price']:.4f}"
        )
