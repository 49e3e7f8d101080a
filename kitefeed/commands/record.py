"""``kitefeed record``: write the ticks of a running feed to Parquet files until it stops or Ctrl-C."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import click

from ..errors import KitefeedError, RingError

__all__ = ["record"]


@click.command()
@click.option("--feed", "feed_name", metavar="NAME", help="Name of the running feed to record (Feed(name=...)).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory for the files; created if missing.")
@click.option("--parquet/--no-parquet", default=True, show_default=True, help="Write decoded ticks to Parquet files.")
@click.option("--journal", is_flag=True, help="Also write raw messages to journal files (.kfj); only with --from-sim (a running feed writes its own with journal_dir).")
@click.option("--rotate-mb", type=click.FloatRange(min=0, min_open=True), default=256.0, show_default=True, help="Start a new file after this many MiB.")
@click.option("--rotate-minutes", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True, help="Start a new file after this many minutes of receive time.")
@click.option("--from-sim", is_flag=True, help="Demo: record a simulator started here, through a WebSocket client, instead of a feed.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True, help="With --from-sim: how long to record.")
def record(
    feed_name: str | None,
    out_dir: Path,
    parquet: bool,
    journal: bool,
    rotate_mb: float,
    rotate_minutes: float,
    from_sim: bool,
    seconds: float,
) -> None:
    """Record ticks to Parquet (and raw messages to journals) until the feed stops or Ctrl-C.

    Prints the ticks written and the records lost at the end; each Parquet file has a
    sidecar JSON file with its own counts.
    """
    from ..record import TickFileWriter

    if from_sim == (feed_name is not None):
        raise click.UsageError("pass either --feed NAME or --from-sim")
    if journal and not from_sim:
        raise click.UsageError(
            "--journal needs the raw WebSocket messages, which only the feed's own workers see: "
            "start the feed with Feed(journal_dir=...) or journal_dir in kitefeed run's [feed] "
            "section, and record Parquet here"
        )
    if not parquet and not journal:
        raise click.UsageError("nothing to write: pass --parquet, --journal or both")
    rotate_bytes = int(rotate_mb * 2**20)
    rotate_seconds = rotate_minutes * 60

    if from_sim:
        _record_simulator(out_dir, parquet, journal, rotate_bytes, rotate_seconds, seconds)
        return

    assert feed_name is not None
    from .. import open_reader
    from ..engine.reader import feed_keys
    from ..record import record_feed

    try:
        api_keys = feed_keys(feed_name)
        reader = open_reader(feed_name, wait="block")
    except KitefeedError as exc:
        raise click.ClickException(str(exc)) from exc

    metadata = {"feed": feed_name, "api_keys": api_keys}
    writer = TickFileWriter(out_dir, metadata=metadata, rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds)
    click.echo(f"recording feed {feed_name!r} ({len(api_keys)} key{'s' if len(api_keys) != 1 else ''}) to {out_dir}; Ctrl-C stops", err=True)
    reason = "feed stopped"
    with reader:
        try:
            record_feed(reader, writer)
        except KeyboardInterrupt:
            reason = "interrupted"
        except RingError as exc:
            # The feed's process died without stopping the feed; the files are complete.
            reason = f"feed failed ({exc})"
    # The writer counts what record_feed wrote and lost even when Ctrl-C cut it short.
    click.echo(f"{reason}: wrote {writer.rows:,} ticks to {len(writer.files)} file{'s' if len(writer.files) != 1 else ''}, lost {writer.lost:,} records")


def _record_simulator(
    out_dir: Path, parquet: bool, journal: bool, rotate_bytes: int, rotate_seconds: float, seconds: float
) -> None:
    from ..parsers import Decoder
    from ..record import JournalWriter, TickFileWriter
    from ..record.capture import capture_messages
    from ..sim import Simulator
    from .demo import demo_instruments

    api_key, token = "record_demo", secrets.token_hex(16)
    metadata = {"feed": "sim", "api_keys": [api_key]}
    journal_writer = JournalWriter(out_dir, metadata=metadata, rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds) if journal else None
    tick_writer = TickFileWriter(out_dir, metadata=metadata, rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds) if parquet else None
    decoder = Decoder()

    def on_message(recv_time_ns: int, key_index: int, connection: int, payload: bytes, is_text: bool) -> None:
        if journal_writer is not None:
            journal_writer.append(recv_time_ns, key_index, connection, payload, is_text)
        if tick_writer is not None and not is_text:
            tick_writer.write(decoder.decode(payload, recv_time_ns))

    received = 0
    try:
        with Simulator({api_key: token}, tick_interval=0.1) as sim:
            click.echo(f"recording the simulator at {sim.url} for {seconds:g} s to {out_dir}", err=True)
            received = asyncio.run(capture_messages(sim.url, api_key, token, demo_instruments(300), on_message, seconds=seconds))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
    finally:
        if journal_writer is not None:
            journal_writer.close()
        if tick_writer is not None:
            tick_writer.close()

    files: list[Path] = []
    if journal_writer is not None:
        files += journal_writer.files
    if tick_writer is not None:
        files += tick_writer.files
    ticks = tick_writer.rows if tick_writer else decoder.stats().ticks
    click.echo(f"recorded {received:,} messages, {ticks:,} ticks, to {len(files)} file{'s' if len(files) != 1 else ''}")
