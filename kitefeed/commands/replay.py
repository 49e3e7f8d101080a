"""``kitefeed replay``: publish recorded ticks into shared memory that readers open like a feed."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from ..errors import KitefeedError

__all__ = ["replay"]


def _parse_speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0
    if not speed > 0 or speed == float("inf"):
        raise click.BadParameter(f"invalid speed {value!r}: expected a number above 0 (1 is the recorded pace) or 'max'", param_hint="'--speed'")
    return speed


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--feed", "feed_name", required=True, metavar="NAME", help="Feed name that readers pass to kitefeed.open_reader.")
@click.option("--speed", default="1", show_default=True, help="1: the recorded pace; N: N times faster; max: as fast as possible.")
@click.option("--max-gap", type=click.FloatRange(min=0), default=None, help="Shorten pauses of recorded time to at most this many seconds.")
@click.option("--ring-capacity", type=int, default=None, help="Records per key's ring, a power of two. Default: enough for every record, at most 262,144.")
@click.option("--linger", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Seconds to keep the closed rings after the end, for late readers; Ctrl-C ends it early.")
def replay(
    files: tuple[Path, ...],
    feed_name: str,
    speed: str,
    max_gap: float | None,
    ring_capacity: int | None,
    linger: float,
) -> None:
    """Publish the ticks of FILES (.parquet or .kfj, in the order given) as feed NAME.

    Readers attach with kitefeed.open_reader(NAME) and read the records as recorded,
    recv_time included; their iteration ends after the last record. The shared memory
    is removed at the end, on Ctrl-C and on SIGTERM.
    """
    from ..record import ReplayFeed, default_ring_capacity, load_recording

    pace = _parse_speed(speed)
    try:
        recording = load_recording(files)
        capacity = ring_capacity or default_ring_capacity(recording.ticks["key_index"])
        feed = ReplayFeed(feed_name, recording.api_keys, capacity)
    except (KitefeedError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc

    ticks = recording.ticks
    click.echo(
        f"replaying {len(ticks):,} ticks of {len(recording.api_keys)} key{'s' if len(recording.api_keys) != 1 else ''} as feed {feed_name!r} "
        f"at {'max' if pace is None else f'{pace:g}x'} speed",
        err=True,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    stats = None
    try:
        with feed:
            with _progress(len(ticks)) as on_progress:
                stats = feed.run(ticks, pace, max_gap_seconds=max_gap, on_progress=on_progress)
            if linger:
                threading.Event().wait(linger)
    except KeyboardInterrupt:
        click.echo("interrupted; shared memory removed", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stats is not None:
        click.echo(f"published {stats.records:,} ticks in {stats.batches:,} batches in {stats.seconds:.1f} s")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _progress:
    """A rich progress bar on standard error when it is a terminal; no output otherwise."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._bar = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(console=Console(stderr=True), transient=False)
        self._bar.start()
        task = self._bar.add_task("replay", total=self._total)
        bar = self._bar

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done)

        return update

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()
