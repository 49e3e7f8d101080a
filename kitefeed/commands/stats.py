"""``kitefeed stats``: print the statistics of a running feed from another process."""

from __future__ import annotations

import sys
import time

import click
import msgspec
from rich.console import Console

from ..dashboard import Dashboard
from ..engine.statsboard import read_board
from ..errors import KitefeedError


@click.command()
@click.argument("feed_name", metavar="NAME")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as one JSON object.")
@click.option("--watch", type=click.FloatRange(min=0.5), metavar="SECONDS", help="Print again every SECONDS until Ctrl-C.")
def stats(feed_name: str, as_json: bool, watch: float | None) -> None:
    """Print the statistics that the running feed NAME publishes once a second."""
    # Wide enough for the table when the output is a pipe or a file (rich assumes 80 columns).
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    view = Dashboard(f"kitefeed {feed_name}", show_elapsed=False)
    try:
        while True:
            try:
                record = read_board(feed_name)
            except KitefeedError as exc:
                raise click.ClickException(f"no statistics for feed {feed_name!r}: {exc}") from None
            if record is None:
                console.print(f"feed {feed_name!r} has not published statistics yet; try again in a second")
            elif as_json:
                click.echo(msgspec.json.encode(record).decode())
            else:
                console.print(view.table(record))
            if watch is None:
                return
            time.sleep(watch)
    except KeyboardInterrupt:
        return
