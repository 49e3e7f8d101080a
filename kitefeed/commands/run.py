"""``kitefeed run``: run a feed from a TOML configuration file until Ctrl-C."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live
from rich.progress import Progress

from ..config import ConfigError, load_config
from ..dashboard import Dashboard
from ..engine import Feed
from ..errors import KitefeedError

_SUBSCRIBE_CHUNK = 1000
"""Instruments per subscribe call, so that progress shows while thousands are subscribed."""


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="TOML configuration file (see kitefeed.example.toml).",
)
@click.option("--seconds", type=click.FloatRange(min=0), help="Stop after this many seconds instead of waiting for Ctrl-C.")
@click.option("--dashboard/--no-dashboard", default=True, show_default=True, help="Show the live table of keys and connections.")
def run(config_path: Path, seconds: float | None, dashboard: bool) -> None:
    """Run a feed from a configuration file: keys, instruments, options and metrics."""
    # Messages and the table go to standard error; on a pipe or a file the table is
    # printed every second, 120 columns wide.
    console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)
    try:
        config = load_config(config_path)
        base = config_path.resolve().parent
        keys = config.api_keys(base, str(config_path))
        tokens_by_mode = config.tokens_by_mode(base, str(config_path))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    options = config.feed
    try:
        feed = Feed(
            keys,
            name=options.name,
            url=options.url,
            ring_capacity=options.ring_capacity,
            allocation=options.allocation,
            instruments_per_connection=options.instruments_per_connection,
            liveness_timeout=options.liveness_timeout,
            failover=options.failover,
            transport=options.transport,
            journal_dir=None if options.journal_dir is None else base / options.journal_dir,
        )
    except KitefeedError as exc:
        raise click.ClickException(f"{exc} (in {config_path}, section [feed])") from None

    with ExitStack() as stack:
        stack.enter_context(feed)
        console.print(
            f"feed {feed.name!r}: {len(keys)} keys, rings of {feed.ring_bytes / 2**20:.1f} MiB in all; "
            f"read it with kitefeed.open_reader({feed.name!r})"
        )
        _subscribe(feed, tokens_by_mode, console)
        if config.metrics.port is not None:
            from ..metrics import serve_metrics

            server = stack.enter_context(serve_metrics(feed, config.metrics.port, config.metrics.host))
            console.print(f"metrics at http://{config.metrics.host}:{server.port}/metrics")
        _watch(feed, seconds, dashboard, console)


def _subscribe(feed: Feed, tokens_by_mode: dict, console: Console) -> None:  # type: ignore[type-arg]
    total = sum(len(tokens) for tokens in tokens_by_mode.values())
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("subscribing", total=total)
        for mode, tokens in tokens_by_mode.items():
            for start in range(0, len(tokens), _SUBSCRIBE_CHUNK):
                chunk = tokens[start : start + _SUBSCRIBE_CHUNK]
                feed.subscribe(chunk, mode)
                progress.advance(task, len(chunk))
    console.print(f"subscribed {total:,} instruments: {feed.distribution()}")


def _watch(feed: Feed, seconds: float | None, dashboard: bool, console: Console) -> None:
    deadline = None if seconds is None else time.monotonic() + seconds
    view = Dashboard(f"kitefeed {feed.name}")
    try:
        with Live(console=console, auto_refresh=False, transient=False) if dashboard and console.is_terminal else ExitStack() as live:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic())))
                if not dashboard:
                    continue
                table = view.table(feed.stats())
                if isinstance(live, Live):
                    live.update(table, refresh=True)
                else:
                    console.print(table)
    except KeyboardInterrupt:
        console.print("stopping")
    sys.stderr.flush()
