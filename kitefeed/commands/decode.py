"""`kitefeed decode`."""

from __future__ import annotations

import click


@click.command()
def decode() -> None:
    """Not built yet."""
    raise click.ClickException("kitefeed decode is not built yet")
