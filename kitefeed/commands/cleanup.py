"""``kitefeed cleanup``: remove shared memory left behind by feeds whose process died."""

from __future__ import annotations

import click

from ..consume.latest import TABLE_PREFIX, find_stale_tables, remove_stale_tables, table_name
from ..engine.naming import SEGMENT_PREFIX, validate_feed_name
from ..errors import InvalidRequestError
from ..ringbuf import find_stale_segments, remove_stale_segments


@click.command()
@click.option("--name", "feed_name", metavar="FEED", help="Only the segments of this feed.")
@click.option("--dry-run", is_flag=True, help="List the segments that would be removed, remove nothing.")
def cleanup(feed_name: str | None, dry_run: bool) -> None:
    """Remove the segments in /dev/shm of kitefeed feeds whose supervisor is no longer running.

    Latest-tick tables whose owner died go too. Segments of running feeds are never
    touched.
    """
    prefix = SEGMENT_PREFIX
    table_prefix = TABLE_PREFIX
    if feed_name is not None:
        try:
            prefix = f"{SEGMENT_PREFIX}{validate_feed_name(feed_name)}-"
        except InvalidRequestError as exc:
            raise click.BadParameter(str(exc), param_hint="--name") from None
        table_prefix = table_name(feed_name)

    if dry_run:
        names = find_stale_segments(prefix) + find_stale_tables(table_prefix)
    else:
        # Latest-tick tables are not rings, so their own module reads their owner.
        names = remove_stale_segments(prefix) + remove_stale_tables(table_prefix)
    verb = "would remove" if dry_run else "removed"
    for name in names:
        click.echo(f"{verb} /dev/shm/{name}")
    click.echo(f"{verb} {len(names)} segment{'s' if len(names) != 1 else ''}")
